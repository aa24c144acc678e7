"""The response cache end to end: real runs against the test server, recorded in a real
history (hits, misses and the TTL on both stores, the rest in SQLite). Hits make no request, cost $0 with the original's tokens, reserve nothing
(a cap too small for any call still lets them through), stream at once; tools still run
inside a cached tool loop; read does not write, off does not read; the TTL; a rejected
structured answer is never cached."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from agentops.api import arun
from agentops.errors import UsageError
from agentops.runtime.events import AgentStatus, RunStatus, TokensStreamed, WorkflowResult
from agentops.testing.server import Fault, OpenAITestServer, call_tool_until
from agentops.workflow.loader import LoadedWorkflow
from tests.support.engine import TEST_KEY_ENV, EventLog, workflow_on
from tests.support.store import execute, rows
from tests.support.tool import tool_workflow, write_python_tools

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}
CHAIN = [
    {"name": "first"},
    {"name": "second", "depends_on": "first", "task": "use {{ first.output }}"},
]


def run(loaded: LoadedWorkflow | Path, db: str | Path, **options: Any) -> WorkflowResult:
    return asyncio.run(arun(loaded, db=db, **options))


def attempts(db: str | Path) -> list[Any]:
    return rows(
        db,
        """SELECT r.workflow_run_id, r.agent, a.cached, a.cost, a.saved_cost, a.input_tokens,
            a.output_tokens, a.request_key, a.response FROM attempts a JOIN runs r
        ON r.id = a.run_id ORDER BY a.id""",
    )


def entries(db: str | Path) -> int:
    return int(rows(db, "SELECT count(*) FROM response_cache")[0][0])


def test_a_second_run_is_answered_from_the_cache_at_no_cost(
    server: OpenAITestServer, db: str
) -> None:
    loaded = workflow_on(server, CHAIN, policies={"cache": "read_write"}, prices=PRICES)
    first = run(loaded, db)
    assert first.ok and first.cost > 0 and len(server.requests) == 2
    assert entries(db) == 2

    log = EventLog()
    second = run(loaded, db, subscribers=[log])
    assert second.ok
    assert len(server.requests) == 2  # no call went out
    assert {n: a.output for n, a in second.agents.items()} == {
        n: a.output for n, a in first.agents.items()
    }
    assert second.cost == 0.0
    assert second.usage == first.usage  # the original's tokens
    cached = [a for r in second.agents.values() for a in r.attempts]
    assert all(a.cached and a.cost == 0.0 for a in cached)
    assert [a.saved for a in cached] == [a.cost for r in first.agents.values() for a in r.attempts]
    # A streaming view gets the whole answer in one piece.
    pieces = [e.text for e in log.of(TokensStreamed) if e.name == "first"]
    assert pieces == [first.agents["first"].output]

    recorded = attempts(db)
    assert [row["cached"] for row in recorded] == [0, 0, 1, 1]
    assert [row["cost"] for row in recorded[2:]] == [0.0, 0.0]
    assert [row["saved_cost"] for row in recorded[2:]] == [row["cost"] for row in recorded[:2]]
    assert [row["input_tokens"] for row in recorded[2:]] == [
        row["input_tokens"] for row in recorded[:2]
    ]
    assert [row["request_key"] for row in recorded[2:]] == [
        row["request_key"] for row in recorded[:2]
    ]
    costs = rows(db, "SELECT cost FROM workflow_runs ORDER BY id")
    assert tuple(costs[1]) == (0.0,)


def test_hits_reserve_nothing_a_cap_too_small_for_any_call_lets_them_through(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    loaded = workflow_on(server, CHAIN, policies={"cache": "read_write"}, prices=PRICES)
    assert run(loaded, db).ok
    # $0.000001 is below any call's worst case: without the cache both agents are skipped.
    capped = run(loaded, db, cost_cap=0.000001)
    assert capped.status is RunStatus.SUCCEEDED
    assert capped.cost == 0.0 and len(server.requests) == 2
    uncached = run(loaded, db, cost_cap=0.000001, cache="off")
    assert uncached.agents["first"].status is AgentStatus.SKIPPED
    assert len(server.requests) == 2


def test_a_changed_prompt_misses_and_the_unchanged_agent_still_hits(
    server: OpenAITestServer, db: str
) -> None:
    policies = {"cache": "read_write"}
    run(workflow_on(server, CHAIN, policies=policies), db)
    changed = [CHAIN[0], {**CHAIN[1], "task": "summarise {{ first.output }}"}]
    result = run(workflow_on(server, changed, policies=policies), db)
    assert result.ok and len(server.requests) == 3
    assert result.agents["first"].attempts[0].cached
    assert not result.agents["second"].attempts[0].cached
    # The same request from another workflow is a hit: the key is the request, not the name.
    other = run(workflow_on(server, changed, policies=policies, name="other_flow"), db)
    assert other.ok and len(server.requests) == 3


def test_read_does_not_write_and_off_does_not_read(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    loaded = workflow_on(server, CHAIN, prices=PRICES)  # policies.cache: off
    run(loaded, db, cache="read")
    assert entries(db) == 0 and len(server.requests) == 2
    run(loaded, db, cache="read_write")
    assert entries(db) == 2 and len(server.requests) == 4
    run(loaded, db)  # off: the entries are there, and not read
    assert len(server.requests) == 6
    run(loaded, db, cache="read")
    assert len(server.requests) == 6
    with pytest.raises(UsageError, match="db="):
        asyncio.run(arun(loaded, cache="read"))


def test_entries_older_than_the_ttl_are_not_read_and_are_replaced(
    server: OpenAITestServer, db: str
) -> None:
    loaded = workflow_on(
        server, [{"name": "only"}], policies={"cache": "read_write", "cache_ttl": "1h"}
    )
    run(loaded, db)
    run(loaded, db)
    assert len(server.requests) == 1
    execute(db, "UPDATE response_cache SET created_at = '2020-01-01T00:00:00.000000+00:00'")
    run(loaded, db)
    assert len(server.requests) == 2  # expired: called again, and stored afresh
    run(loaded, db)
    assert len(server.requests) == 2
    assert entries(db) == 1


def test_inside_a_tool_loop_hits_serve_each_turn_and_the_tools_still_run(tmp_path: Path) -> None:
    write_python_tools(tmp_path)
    db = tmp_path / "history.db"
    try:
        with OpenAITestServer(reply=call_tool_until("add", {"a": 2, "b": 3}, turns=2)) as server:
            path = tool_workflow(
                tmp_path,
                server.base_url,
                {"add": {"python": "mytools:add"}},
                [{"name": "a", "tools": ["add"]}],
                key_env=TEST_KEY_ENV,
                policies={"cache": "read_write"},
            )
            first = run(path, db, env={TEST_KEY_ENV: "sk-test"})
            assert first.ok and len(server.requests) == 3
            second = run(path, db, env={TEST_KEY_ENV: "sk-test"})
            assert len(server.requests) == 3
        tools = sys.modules["mytools"]
        assert [c for c in tools.calls if c[0] == "add"] == [("add", 2, 3)] * 4
    finally:
        sys.modules.pop("mytools", None)
    agent = second.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED and agent.output == first.agents["a"].output
    assert [a.cached for a in agent.attempts] == [True, True, True]
    assert [c.tool for c in agent.tool_calls] == ["add", "add"]


def test_an_answer_that_does_not_follow_the_schema_is_never_cached(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    loaded = workflow_on(
        server,
        [{"name": "planner", "output": {"schema": schema, "retries": 1}}],
        policies={"cache": "read_write"},
    )
    server.inject(Fault(kind="wrong_shape"), times=1)
    first = run(loaded, db)
    assert first.ok and len(server.requests) == 2  # the answer, then the re-ask
    assert entries(db) == 1  # only the re-ask's valid answer
    second = run(loaded, db)
    # The first turn misses (its bad answer was not kept) and now gets a valid answer.
    assert second.ok and len(server.requests) == 3
    assert not second.agents["planner"].attempts[0].cached


def test_a_tool_that_says_cache_true_is_answered_from_the_cache_too(tmp_path: Path) -> None:
    write_python_tools(tmp_path, "cachedtools")
    db = tmp_path / "history.db"
    try:
        with OpenAITestServer(reply=call_tool_until("add", {"a": 4, "b": 5})) as server:
            path = tool_workflow(
                tmp_path,
                server.base_url,
                {"add": {"python": "cachedtools:add", "cache": True}},
                [{"name": "a", "tools": ["add"]}],
                key_env=TEST_KEY_ENV,
                policies={"cache": "read_write"},
            )
            first = run(path, db, env={TEST_KEY_ENV: "sk-test"})
            second = run(path, db, env={TEST_KEY_ENV: "sk-test"})
            assert len(server.requests) == 2
        tools = sys.modules["cachedtools"]
        assert tools.calls == [("add", 4, 5)]  # run once: the second run's call was a hit
    finally:
        sys.modules.pop("cachedtools", None)
    assert first.ok and second.ok
    (call,) = second.agents["a"].tool_calls
    assert call.status == "succeeded" and call.result == "9"
    models = sorted(str(row[0]) for row in rows(db, "SELECT model FROM response_cache"))
    assert models == ["None", "gpt-4o-mini", "gpt-4o-mini"]  # the tool's entry has no model


def test_the_views_say_an_agent_was_answered_from_the_cache(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    from agentops.runtime.events import AgentFinished
    from agentops.ui.plain import plain_lines
    from agentops.ui.state import RunState

    db = tmp_path / "history.db"
    loaded = workflow_on(server, CHAIN, policies={"cache": "read_write"})
    run(loaded, db)
    log = EventLog()
    state = RunState()
    run(loaded, db, subscribers=[log, state.apply])
    lines = [line for event in log.of(AgentFinished) for line in plain_lines(event)]
    assert all(" succeeded (cached) in " in line for line in lines), lines
    assert {row.label for row in state.rows.values()} == {"succeeded (cached)"}


def test_a_batch_whose_calls_are_all_hits_draws_nothing_from_its_budget(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    from agentops.batch.runner import arun_batch

    db = tmp_path / "history.db"
    data = tmp_path / "rows.jsonl"
    data.write_text('{"word": "a"}\n{"word": "b"}\n', encoding="utf-8")
    loaded = workflow_on(
        server,
        [{"name": "echo", "task": "say {{ inputs.word }}"}],
        inputs={"word": "x"},
        prices=PRICES,
    )
    filled = asyncio.run(arun_batch(loaded, data=data, db=db, cache="read_write"))
    assert filled.status is RunStatus.SUCCEEDED and filled.cost > 0
    # A budget too small for any one call: every row is a hit, and the batch spends nothing.
    again = asyncio.run(arun_batch(loaded, data=data, db=db, cache="read", cost_cap=0.000001))
    assert again.status is RunStatus.SUCCEEDED and again.succeeded == 2
    assert again.cost == 0.0 and len(server.requests) == 2


def test_resume_reads_the_cache_for_the_agents_it_runs_again(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    from agentops.api import aresume

    db = tmp_path / "history.db"
    loaded = workflow_on(server, CHAIN, policies={"cache": "off", "retries": 0})
    assert run(loaded, db, cache="read_write").ok  # run 1 fills the cache
    server.inject(Fault(kind="status", status=400), times=1, match=lambda b: "use " in str(b))
    failed = run(loaded, db)  # run 2, cache off: second fails
    assert failed.agents["second"].status is AgentStatus.FAILED
    calls = len(server.requests)
    resumed = asyncio.run(aresume(failed.workflow_run_id, db=db, cache="read"))
    assert resumed.ok and len(server.requests) == calls  # second answered from the cache
    assert resumed.agents["first"].reused
    assert [a.cached for a in resumed.agents["second"].attempts] == [True]
