"""Replays: a run answered from a recorded run's attempts by agent and request key, with the
test server stopped (no network), from either store; a call with no recorded match fails its agent naming what
differs; tools run for real; a batch replays a recorded batch."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

from agentops.api import arun
from agentops.batch.runner import arun_batch
from agentops.errors import RunNotFoundError, UsageError
from agentops.runtime.events import AgentStatus, WorkflowResult
from agentops.store.stores import history_reader
from agentops.testing.replay import latest_run, replay
from agentops.testing.server import OpenAITestServer, call_tool_until
from agentops.workflow.loader import LoadedWorkflow
from tests.support.engine import TEST_KEY_ENV, workflow_on
from tests.support.fan_out import ROUTED_FLOW, answer_the_flow
from tests.support.reliability import write_workflow
from tests.support.store import rows
from tests.support.tool import tool_workflow, write_python_tools

CHAIN = [
    {"name": "first", "temperature": 0.2},
    {"name": "second", "depends_on": "first", "task": "use {{ first.output }}"},
]


def run(loaded: LoadedWorkflow | Path, db: str | Path, **options: Any) -> WorkflowResult:
    return asyncio.run(arun(loaded, db=db, **options))


def outputs(result: WorkflowResult) -> dict[str, str | None]:
    return {name: agent.output for name, agent in result.agents.items()}


def test_a_replay_answers_every_call_from_the_recording_without_the_network(db: str) -> None:
    with OpenAITestServer() as server:
        loaded = workflow_on(server, CHAIN)
        recorded = run(loaded, db)
    assert recorded.ok and recorded.workflow_run_id is not None
    # The server is gone: any live call would fail with a connection error.
    replayed = run(loaded, db, replay=recorded.workflow_run_id)
    assert replayed.ok, {n: a.error for n, a in replayed.agents.items()}
    assert outputs(replayed) == outputs(recorded)
    assert replayed.cost == 0.0
    assert all(a.cached for r in replayed.agents.values() for a in r.attempts)
    # A replay of a replay works too: its cached attempts recorded their answers.
    assert run(loaded, db, replay=replayed.workflow_run_id).ok
    marks = [tuple(r) for r in rows(db, "SELECT replaying FROM workflow_runs ORDER BY id")]
    assert marks == [(None,), (f"workflow run {recorded.workflow_run_id}",), ("workflow run 2",)]
    # A replay's answers are not the cache's hits.
    reader = history_reader(db)
    try:
        assert reader.cache_stats() == []
    finally:
        reader.close()


def test_a_call_with_no_recorded_match_fails_its_agent_naming_what_differs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        recorded = run(workflow_on(server, CHAIN), db)
        changed = workflow_on(
            server,
            [{**CHAIN[0], "temperature": 0.7}, {**CHAIN[1], "model": "gpt-4o"}],
        )
        reworded = workflow_on(server, [{**CHAIN[0], "task": "do it differently"}, CHAIN[1]])
        assert recorded.workflow_run_id is not None
        requests = len(server.requests)
        result = run(changed, db, replay=recorded.workflow_run_id)
        again = run(reworded, db, replay=recorded.workflow_run_id)
        assert len(server.requests) == requests  # a mismatch is never a live call
    first = result.agents["first"]
    assert first.status is AgentStatus.FAILED
    assert first.error is not None
    assert "agent first" in first.error and "temperature 0.7 (recorded 0.2)" in first.error
    assert f"workflow run {recorded.workflow_run_id}" in first.error
    assert result.agents["second"].status is AgentStatus.SKIPPED
    error = again.agents["first"].error or ""
    assert "message 1 (user)" in error and "model" not in error
    assert first.attempts[0].error_type == "ReplayMismatchError"


def test_the_model_differing_is_named(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        recorded = run(workflow_on(server, CHAIN[:1]), db)
        other = workflow_on(server, [{**CHAIN[0], "model": "gpt-4o"}])
    result = run(other, db, replay=recorded.workflow_run_id)
    assert "model 'gpt-4o' (recorded 'gpt-4o-mini')" in (result.agents["first"].error or "")


def test_tools_run_for_real_in_a_replay(tmp_path: Path) -> None:
    write_python_tools(tmp_path, "replaytools")
    db = tmp_path / "history.db"
    env = {TEST_KEY_ENV: "sk-test"}
    try:
        with OpenAITestServer(reply=call_tool_until("add", {"a": 1, "b": 2})) as server:
            path = tool_workflow(
                tmp_path,
                server.base_url,
                {"add": {"python": "replaytools:add", "cache": True}},
                [{"name": "a", "tools": ["add"]}],
                key_env=TEST_KEY_ENV,
            )
            recorded = run(path, db, env=env)
        replayed = run(path, db, env=env, replay=recorded.workflow_run_id)
        calls = sys.modules["replaytools"].calls
    finally:
        sys.modules.pop("replaytools", None)
    assert replayed.ok and outputs(replayed) == outputs(recorded)
    assert calls == [("add", 1, 2), ("add", 1, 2)]  # not from any cache: a replay runs tools


def test_a_fan_out_with_structured_values_and_routing_replays(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        answer_the_flow(server, items=3)
        loaded = workflow_on(server, ROUTED_FLOW)
        recorded = run(loaded, db)
    assert recorded.agents["writer"].instances is not None
    assert len(recorded.agents["writer"].instances) == 3
    assert recorded.workflow_run_id is not None
    replayed = run(loaded, db, replay=recorded.workflow_run_id)
    assert replayed.status is recorded.status
    assert outputs(replayed) == outputs(recorded)


def test_replay_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        loaded = workflow_on(server, CHAIN[:1])
        run(loaded, db)
    with pytest.raises(RunNotFoundError):
        run(loaded, db, replay=99)
    with pytest.raises(UsageError, match="leave --cache out"):
        run(loaded, db, replay=1, cache="read")
    with pytest.raises(UsageError, match="db="):
        asyncio.run(arun(loaded, replay=1))


def test_a_batch_replays_a_recorded_batch(tmp_path: Path, db: str) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"word": "a"}\n{"word": "b"}\n', encoding="utf-8")
    agents = [{"name": "echo", "task": "say {{ inputs.word }}"}]
    with OpenAITestServer() as server:
        loaded = workflow_on(server, agents, inputs={"word": "x"})
        recorded = asyncio.run(arun_batch(loaded, data=data, db=db))
    assert recorded.status.value == "succeeded"
    replayed = asyncio.run(arun_batch(loaded, data=data, db=db, replay=recorded.batch_id))
    assert replayed.status.value == "succeeded" and replayed.cost == 0.0
    data.write_text('{"word": "a"}\n{"word": "c"}\n', encoding="utf-8")
    mismatched = asyncio.run(arun_batch(loaded, data=data, db=db, replay=recorded.batch_id))
    assert mismatched.status.value == "failed"


def test_the_pytest_recipe_replays_a_committed_recording_and_leaves_it_unchanged(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "recordings" / "flow.db"
    recording.parent.mkdir()
    flow = tmp_path / "flow.yaml"
    with OpenAITestServer() as server:
        write_workflow(flow, server.base_url, CHAIN, key_env=TEST_KEY_ENV)
        recorded = run(flow, recording, env={TEST_KEY_ENV: "sk-real"})
    before = hashlib.sha256(recording.read_bytes()).hexdigest()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = replay(flow, recording, scratch=scratch, env={TEST_KEY_ENV: "unused"})
    assert result.ok and outputs(result) == outputs(recorded)
    assert hashlib.sha256(recording.read_bytes()).hexdigest() == before
    assert latest_run(recording, "reliability") == recorded.workflow_run_id
    with pytest.raises(RunNotFoundError, match="no recorded run of workflow 'other'"):
        latest_run(recording, "other")


def test_the_cache_and_replays_are_refused_with_agents_on_ray(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        loaded = workflow_on(server, CHAIN[:1])
        recorded = run(loaded, db)
        for options in ({"cache": "read"}, {"replay": recorded.workflow_run_id}):
            with pytest.raises(UsageError, match="use --executor local with them"):
                run(loaded, db, executor="ray", **options)
        assert len(server.requests) == 1
