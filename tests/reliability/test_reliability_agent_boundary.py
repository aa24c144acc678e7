"""An agent's failure is the agent's: whatever a provider answers or a tool returns or raises
fails that agent (or goes back to the model as a tool error) with one line; its siblings,
the other rows of a batch and every resume carry on, and the run always ends recorded.
Every secret the run holds (provider keys, ``${VAR}`` values) is masked wherever a tool's
words go: the terminal, the history, the next prompt and the spans."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
from agentops import FakeProvider
from agentops.runtime.events import AgentStatus, RunStatus
from agentops.testing.server import OpenAITestServer, ScriptedReply, ScriptedToolCall
from agentops.tracing.session import TracingSession
from tests.support.reliability import KEY, KEY_ENV, cli_env, rows, run_agentops
from tests.support.tool import tool_workflow

pytestmark = pytest.mark.usefixtures("provider_key")

HOSTILE_TOOLS = f'''
import os, sys

def deep(n: int) -> str:
    """Never reached: the arguments do not parse."""
    return "parsed"

def leak(n: int) -> str:
    """Fails, quoting the provider's key."""
    raise RuntimeError("could not log in with " + os.environ["{KEY_ENV}"])

def echo_key(n: int) -> str:
    """Returns the provider's key."""
    return "the key is " + os.environ["{KEY_ENV}"]

def surrogate(n: int) -> str:
    """Returns a lone surrogate, which no UTF-8 encoder accepts."""
    return "half a pair: \\ud800 then more"

def row_check(n: int) -> str:
    """Row 10 exits the interpreter."""
    if n == 10:
        sys.exit(3)
    return f"row {{n}} is fine"
'''

DEEP = "[" * 3000 + "]" * 3000


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "hostile.py").write_text(HOSTILE_TOOLS, encoding="utf-8")
    yield tmp_path
    sys.modules.pop("hostile", None)


def call_once(tool: str, arguments: dict[str, Any] | str) -> Any:
    """A reply hook: agent ``a`` calls ``tool`` once, then answers with the tool's result;
    every other agent answers at once."""

    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        messages = body["messages"]
        if "do a" not in str(messages[0]["content"]) and "do a" not in str(messages[-1]["content"]):
            return "sibling done"
        results = [m for m in messages if m["role"] == "tool"]
        if not results:
            return ScriptedReply("", (ScriptedToolCall(tool, arguments),))
        return "after the tool: " + str(results[-1]["content"])

    return reply


def hostile_flow(folder: Path, server: OpenAITestServer, tool: str, **options: Any) -> Path:
    tools = {tool: {"python": f"hostile:{tool}", **options.pop("tool_options", {})}}
    agents = [{"name": "a", "tools": [tool]}, {"name": "b"}, {"name": "c", "depends_on": ["b"]}]
    return tool_workflow(folder, server.base_url, tools, agents, key_env=KEY_ENV, **options)


def test_a_tool_call_whose_arguments_nest_3000_deep_goes_back_to_the_model_and_the_run_finishes(
    folder: Path,
) -> None:
    with OpenAITestServer(reply=call_once("deep", DEEP)) as server:
        completed = run_agentops(
            "run", hostile_flow(folder, server, "deep"), "--db", folder / "h.db"
        )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    (call,) = rows(folder / "h.db", "SELECT status, error FROM tool_calls")
    assert call["status"] == "failed"
    assert call["error"] == "the arguments nest too deeply to be read; send a flatter JSON object"
    assert [
        (r["agent"], r["status"])
        for r in rows(folder / "h.db", "SELECT agent, status FROM runs ORDER BY agent")
    ] == [
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("c", "succeeded"),
    ]
    assert rows(folder / "h.db", "SELECT status FROM workflow_runs")[0]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (SystemExit(3), "MalformedResponseError: the provider raised SystemExit: 3"),
        (KeyboardInterrupt(), "MalformedResponseError: the provider raised KeyboardInterrupt"),
        (
            RecursionError("too deep"),
            "MalformedResponseError: the provider raised RecursionError: too deep",
        ),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "RecursionError"],
)
def test_anything_a_provider_raises_fails_that_agent_and_its_siblings_carry_on(
    tmp_path: Path, raised: BaseException, reason: str
) -> None:
    document = {
        "name": "boundary",
        "policies": {"retries": 0, "cost_cap": 1.0},
        "prices": {"gpt-4o-mini": {"input": 1.0, "output": 1.0}},
        "agents": [
            {"name": "a", "model": "gpt-4o-mini", "task": "a"},
            {"name": "b", "model": "gpt-4o-mini", "task": "b"},
            {"name": "c", "model": "gpt-4o-mini", "task": "c", "depends_on": ["b"]},
        ],
    }
    path = tmp_path / "flow.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    fake = FakeProvider("fine", errors={"a": [raised]})
    result = agentops.run(path, provider=fake, db=tmp_path / "h.db")
    assert result.agents["a"].status is AgentStatus.FAILED
    assert result.agents["a"].error == reason
    assert [result.agents[n].status for n in ("b", "c")] == [AgentStatus.SUCCEEDED] * 2
    assert result.status is RunStatus.FAILED
    recorded = rows(tmp_path / "h.db", "SELECT status, finished_at FROM workflow_runs")[0]
    assert recorded["status"] == "failed" and recorded["finished_at"] is not None
    (attempt,) = rows(
        tmp_path / "h.db",
        "SELECT a.status, a.error FROM attempts a JOIN runs r ON r.id = a.run_id WHERE r.agent = 'a'",
    )
    assert attempt["status"] == "failed" and attempt["error"] == reason


def test_a_row_whose_tool_exits_the_interpreter_fails_alone_and_resume_batch_meets_no_crash(
    folder: Path,
) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        messages = body["messages"]
        results = [m for m in messages if m["role"] == "tool"]
        if not results:
            number = int(str(messages[-1]["content"]).rsplit(" ", 1)[1])
            return ScriptedReply("", (ScriptedToolCall("row_check", {"n": number}),))
        return str(results[-1]["content"])

    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(1, 41)), encoding="utf-8")
    with OpenAITestServer(reply=reply) as server:
        flow = tool_workflow(
            folder,
            server.base_url,
            {"row_check": {"python": "hostile:row_check", "on_tool_error": "fail"}},
            [{"name": "a", "tools": ["row_check"], "task": "check row {{ inputs.n }}"}],
            key_env=KEY_ENV,
        )
        document = yaml.safe_load(flow.read_text(encoding="utf-8"))
        document["inputs"] = {"n": {"description": "the row's number"}}
        flow.write_text(yaml.safe_dump(document), encoding="utf-8")
        db = folder / "h.db"
        first = run_agentops("batch", flow, "--data", data, "--db", db)
        assert first.returncode == 1, first.stderr
        assert "Traceback" not in first.stdout + first.stderr
        statuses = rows(db, "SELECT batch_row, status FROM workflow_runs ORDER BY batch_row")
        assert len(statuses) == 40
        assert [s["batch_row"] for s in statuses if s["status"] != "succeeded"] == [10]
        (error,) = rows(db, "SELECT error FROM runs WHERE error IS NOT NULL")
        assert re.fullmatch(
            r"tool row_check failed \(on_tool_error: fail\): .*SystemExit\W+3\W*", error["error"]
        )
        before = len(server.requests)
        again = run_agentops("resume-batch", "1", "--db", db)
    assert again.returncode == 1, again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    assert len(server.requests) == before + 1  # only row 10 ran again
    assert rows(db, "SELECT status FROM batches")[0]["status"] == "failed"
    assert all(
        r["status"] in ("succeeded", "failed") for r in rows(db, "SELECT status FROM workflow_runs")
    )


def test_a_tool_result_with_a_lone_surrogate_reaches_the_model_replaced_not_as_a_failed_call(
    folder: Path,
) -> None:
    with OpenAITestServer(reply=call_once("surrogate", {"n": 1})) as server:
        result = agentops.run(hostile_flow(folder, server, "surrogate"), db=folder / "h.db")
        (message,) = [m for r in server.requests for m in r.body["messages"] if m["role"] == "tool"]
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED, agent.error
    assert agent.retries == 0
    assert message["content"] == "half a pair: \ufffd then more"
    assert (
        rows(folder / "h.db", "SELECT result FROM tool_calls")[0]["result"]
        == "half a pair: \ufffd then more"
    )


def test_a_reply_with_a_lone_surrogate_is_recorded_and_fed_downstream(tmp_path: Path) -> None:
    def reply(body: dict[str, Any]) -> str:
        return (
            "lone \ud800 surrogate" if "agent a" in str(body["messages"][-1]["content"]) else "fine"
        )

    document = {
        "name": "surrogates",
        "providers": {"test": {"base_url": "", "api_key_env": KEY_ENV}},
        "agents": [
            {"name": "a", "model": "gpt-4o-mini", "provider": "test", "task": "agent a"},
            {
                "name": "b",
                "model": "gpt-4o-mini",
                "provider": "test",
                "task": "agent b: {{ a.output }}",
                "depends_on": ["a"],
            },
        ],
    }
    with OpenAITestServer(reply=reply) as server:
        document["providers"]["test"]["base_url"] = server.base_url
        path = tmp_path / "flow.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        completed = run_agentops("run", path, "--db", tmp_path / "h.db")
    assert completed.returncode == 0, completed.stderr
    assert [
        (r["agent"], r["status"], r["output"])
        for r in rows(tmp_path / "h.db", "SELECT agent, status, output FROM runs ORDER BY agent")
    ] == [
        ("a", "succeeded", "lone \ufffd surrogate"),
        ("b", "succeeded", "fine"),
    ]


def everything_recorded(db: Path) -> str:
    """Every value of every table, as one text to search."""
    connection = sqlite3.connect(db)
    try:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return "\n".join(
            repr(tuple(row))
            for table in tables
            for row in connection.execute(f'SELECT * FROM "{table}"')
        )
    finally:
        connection.close()


@pytest.mark.parametrize("tool", ["leak", "echo_key"])
def test_a_provider_key_a_tool_repeats_is_masked_in_output_history_prompts_and_spans(
    folder: Path, tool: str
) -> None:
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory", content=True)
    with OpenAITestServer(reply=call_once(tool, {"n": 1})) as server:
        flow = hostile_flow(folder, server, tool)
        try:
            result = agentops.run(flow, db=folder / "h.db", tracing=session)
        finally:
            session.close()
        sent = json.dumps([request.body for request in server.requests])
        completed = run_agentops("run", flow, "--db", folder / "cli.db", env=cli_env())
    assert result.agents["a"].status is AgentStatus.SUCCEEDED
    assert "***" in sent and KEY not in sent
    assert KEY not in everything_recorded(folder / "h.db") and KEY not in everything_recorded(
        folder / "cli.db"
    )
    spans = json.dumps(
        [dict(span.attributes or {}) for span in exporter.get_finished_spans()], default=str
    )
    assert "***" in spans and KEY not in spans
    assert completed.returncode == 0 and KEY not in completed.stdout + completed.stderr
    shown = run_agentops("show-workflow-run", "1", "--db", folder / "cli.db")
    assert KEY not in shown.stdout + shown.stderr


def test_a_scheduler_bug_still_ends_the_run_recorded_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentops.runtime.engine

    def broken(condition: Any, succeeded: Any) -> bool:
        raise RuntimeError("a bug in the scheduler")

    monkeypatch.setattr(agentops.runtime.engine, "condition_holds", broken)
    path = tmp_path / "flow.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "bug", "agents": [{"name": "a", "model": "gpt-4o-mini", "task": "a"}]}
        )
    )
    result = agentops.run(path, provider=FakeProvider("fine"), db=tmp_path / "h.db")
    assert result.status is RunStatus.FAILED
    assert result.agents["a"].status is AgentStatus.CANCELLED
    assert result.agents["a"].error == "internal error: RuntimeError: a bug in the scheduler"
    recorded = rows(tmp_path / "h.db", "SELECT status, finished_at FROM workflow_runs")[0]
    assert recorded["status"] == "failed" and recorded["finished_at"] is not None
