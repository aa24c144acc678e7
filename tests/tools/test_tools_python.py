"""Python tools over real HTTP: the loop, sync and async functions, schemas, tool errors,
timeouts, max_turns, the cost cap per turn, retries inside the loop, and the recorded rows."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.errors import WorkflowError
from agentops.runtime.events import AgentStatus, ToolCallFinished, ToolCallStarted
from agentops.testing.server import (
    Fault,
    OpenAITestServer,
    ScriptedReply,
    ScriptedToolCall,
    call_tool_until,
)
from tests.support.engine import EventLog
from tests.support.reliability import rows
from tests.support.tool import tool_workflow, write_python_tools

KEY_ENV = "AGENTOPS_TOOLS_KEY"
PRICES = {"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}}  # $0.001 a token: the cap bites fast


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-tools-test")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    write_python_tools(tmp_path)
    yield tmp_path
    sys.modules.pop("mytools", None)


def flow(folder: Path, server: OpenAITestServer, agent: dict[str, Any], **options: Any) -> Path:
    tools = options.pop(
        "tools",
        {
            "add": {"python": "mytools:add"},
            "shout": {"python": "mytools:shout"},
            "explode": {"python": "mytools:explode"},
            "sleepy": {"python": "mytools:sleepy", "timeout": 0.2},
            "hang": {"python": "mytools:hang", "timeout": 0.2},
            "busy": {"python": "mytools:busy"},
        },
    )
    return tool_workflow(
        folder, server.base_url, tools, [{"name": "a", **agent}], key_env=KEY_ENV, **options
    )


def tool_messages(server: OpenAITestServer, request: int = -1) -> list[dict[str, Any]]:
    return [m for m in server.requests[request].body["messages"] if m["role"] == "tool"]


def test_sync_and_async_tools_run_and_their_results_reach_the_model(folder: Path) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        done = sum(m["role"] == "tool" for m in body["messages"])
        if done == 0:
            return ScriptedReply(
                "",
                (
                    ScriptedToolCall("add", {"a": 2, "b": 3}),
                    ScriptedToolCall("shout", {"text": "hi"}),
                ),
            )
        return "the sum is 5"

    with OpenAITestServer(reply=reply) as server:
        log = EventLog()
        result = agentops.run(
            flow(folder, server, {"tools": ["add", "shout"]}), db=folder / "h.db", subscribers=[log]
        )
        agent = result.agents["a"]
        assert agent.status is AgentStatus.SUCCEEDED, agent.error
        assert agent.output == "the sum is 5"
        offered = {t["function"]["name"]: t["function"] for t in server.requests[0].body["tools"]}
        assert set(offered) == {"add", "shout"}
        assert offered["add"]["description"] == "Add two whole numbers."
        assert offered["add"]["parameters"]["properties"]["a"] == {
            "type": "integer",
            "description": "the first number",
        }
        assert offered["add"]["parameters"]["required"] == ["a"]
        assert [m["content"] for m in tool_messages(server)] == ["5", '{"text":"HI"}']
        assert server.requests[1].body["messages"][1]["tool_calls"][0]["function"]["name"] == "add"
    assert [c.tool for c in agent.tool_calls] == ["add", "shout"] or [
        c.tool for c in agent.tool_calls
    ] == ["shout", "add"]
    assert [a.turn for a in agent.attempts] == [1, 2] and agent.retries == 0
    assert len(log.of(ToolCallStarted)) == len(log.of(ToolCallFinished)) == 2

    recorded = rows(folder / "h.db", "SELECT * FROM tool_calls ORDER BY tool")
    run_id = rows(folder / "h.db", "SELECT id FROM runs")[0]["id"]
    assert [(r["tool"], r["turn"], r["status"], r["run_id"], r["agent"]) for r in recorded] == [
        ("add", 1, "succeeded", run_id, "a"),
        ("shout", 1, "succeeded", run_id, "a"),
    ]
    assert json.loads(recorded[0]["arguments"]) == {"a": 2, "b": 3} and recorded[0]["result"] == "5"
    assert recorded[0]["started_at"] and recorded[0]["duration"] >= 0
    assert [
        r["turn"] for r in rows(folder / "h.db", "SELECT turn FROM attempts ORDER BY number")
    ] == [1, 2]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        (
            "add",
            {"a": "not a number"},
            "error: invalid arguments: a: Input should be a valid integer",
        ),
        ("add", {"a": 1, "c": 2}, "error: invalid arguments: c: unexpected argument"),
        ("add", "{not json", "error: the arguments are not valid JSON"),
        ("explode", {"reason": "kaboom"}, "error: RuntimeError: kaboom"),
        ("hang", {}, "error: no result within 0.2s (the tool's timeout)"),
        ("sleepy", {"seconds": 30}, "error: no result within 0.2s (the tool's timeout)"),
        ("nosuch", {}, "error: there is no tool named 'nosuch'"),
    ],
    ids=[
        "invalid-type",
        "unexpected-argument",
        "invalid-json",
        "raises",
        "async-hangs",
        "sync-hangs",
        "unknown",
    ],
)
def test_tool_errors_go_back_to_the_model(
    folder: Path, tool: str, arguments: Any, expected: str
) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        if not any(m["role"] == "tool" for m in body["messages"]):
            return ScriptedReply("", (ScriptedToolCall(tool, arguments),))
        return "recovered"

    with OpenAITestServer(reply=reply) as server:
        result = agentops.run(
            flow(folder, server, {"tools": ["add", "explode", "hang", "sleepy"]}),
            db=folder / "h.db",
        )
        (message,) = tool_messages(server)
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED and agent.output == "recovered"
    assert message["content"].startswith(expected), message["content"]
    (call,) = agent.tool_calls
    assert call.status == "failed" and call.error and expected.removeprefix("error: ") in call.error
    assert rows(folder / "h.db", "SELECT status, error FROM tool_calls")[0]["status"] == "failed"
    mytools = sys.modules["mytools"]
    assert not [c for c in mytools.calls if c[0] == "add"], (
        "an invalid call must not reach the function"
    )


def test_on_tool_error_fail_fails_the_agent(folder: Path) -> None:
    tools = {"explode": {"python": "mytools:explode", "on_tool_error": "fail"}}
    with OpenAITestServer(reply=call_tool_until("explode", {"reason": "no"}, turns=5)) as server:
        result = agentops.run(flow(folder, server, {"tools": ["explode"]}, tools=tools))
        assert len(server.requests) == 1
    agent = result.agents["a"]
    assert agent.status is AgentStatus.FAILED
    assert agent.error == "tool explode failed (on_tool_error: fail): RuntimeError: no"


def test_a_model_that_never_stops_is_stopped_by_max_turns(folder: Path) -> None:
    with OpenAITestServer(reply=call_tool_until("add", {"a": 1}, turns=10**9)) as server:
        result = agentops.run(
            flow(folder, server, {"tools": ["add"], "max_turns": 4}), db=folder / "h.db"
        )
        assert len(server.requests) == 4
    agent = result.agents["a"]
    assert agent.status is AgentStatus.FAILED and agent.error == "stopped after 4 turns (max_turns)"
    assert (
        len(agent.tool_calls) == 3
    )  # the last turn's calls are not run: there is no turn after it
    assert result.exit_code == 1
    assert rows(folder / "h.db", "SELECT count(*) FROM tool_calls")[0][0] == 3


def test_policies_max_turns_is_the_default(folder: Path) -> None:
    with OpenAITestServer(reply=call_tool_until("add", {"a": 1}, turns=10**9)) as server:
        result = agentops.run(flow(folder, server, {"tools": ["add"]}, policies={"max_turns": 2}))
        assert len(server.requests) == 2
    assert result.agents["a"].error == "stopped after 2 turns (max_turns)"


def test_a_model_that_never_stops_is_stopped_by_the_cost_cap_before_it_spends(folder: Path) -> None:
    cap = 5.0
    with OpenAITestServer(
        reply=call_tool_until("shout", {"text": "x" * 200}, turns=10**9)
    ) as server:
        result = agentops.run(
            flow(
                folder,
                server,
                {"tools": ["shout"], "max_tokens": 20},
                prices=PRICES,
                policies={"max_turns": 1000},
            ),
            db=folder / "h.db",
            cost_cap=cap,
        )
        calls = len(server.requests)
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SKIPPED
    assert agent.error == f"cost cap (after {calls} turns)"
    assert 2 <= calls < 1000
    assert result.cost <= cap and agent.cost == result.cost > 0
    (run,) = rows(folder / "h.db", "SELECT cost, status FROM workflow_runs")
    assert run["cost"] == pytest.approx(result.cost) and run["status"] == "failed"
    recorded = rows(folder / "h.db", "SELECT cost FROM runs")[0]["cost"]
    assert recorded == pytest.approx(agent.cost)  # what it spent stays recorded


def test_a_rate_limit_on_a_later_turn_retries_that_turn_only(folder: Path) -> None:
    with OpenAITestServer(reply=call_tool_until("add", {"a": 1}, turns=2)) as server:
        server.inject(
            Fault(kind="status", status=429, retry_after=0.01),
            match=lambda body: (
                any(m["role"] == "tool" for m in body["messages"])
                and len([m for m in body["messages"] if m["role"] == "tool"]) == 1
            ),
        )
        result = agentops.run(flow(folder, server, {"tools": ["add"]}))
        assert len(server.requests) == 4
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED
    assert [(a.turn, a.status) for a in agent.attempts] == [
        (1, "succeeded"),
        (2, "failed"),
        (2, "succeeded"),
        (3, "succeeded"),
    ]
    assert agent.retries == 1 and len(agent.tool_calls) == 2


def test_parallel_calls_are_capped_per_agent(folder: Path) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        if not any(m["role"] == "tool" for m in body["messages"]):
            return ScriptedReply("", tuple(ScriptedToolCall("busy", {"n": n}) for n in range(6)))
        return "ok"

    with OpenAITestServer(reply=reply) as server:
        result = agentops.run(
            flow(folder, server, {"tools": ["busy"], "max_parallel_tool_calls": 2})
        )
        contents = [m["content"] for m in tool_messages(server)]
    assert result.ok
    assert contents == [str(n) for n in range(6)]  # results in call order
    assert sys.modules["mytools"].most_active == 2


def test_plan_shows_max_turns_times_the_per_turn_bound(folder: Path) -> None:
    from agentops.cli.plan import make_plan, render_plan
    from agentops.workflow.loader import load_workflow

    with OpenAITestServer() as server:
        loaded = load_workflow(
            flow(folder, server, {"tools": ["add"], "max_turns": 8}, prices=PRICES)
        )
    plan = make_plan(loaded.workflow, {}, env={KEY_ENV: "x"})
    (agent,) = plan.agents
    assert agent.max_turns == 8 and agent.per_turn_cost is not None
    assert agent.worst_case_cost == pytest.approx(8 * agent.per_turn_cost)
    text = "\n".join(render_plan(plan))
    assert "up to 8 turns (max_turns)" in text and "each turn reserves its own bound" in text


@pytest.mark.parametrize(
    ("tools", "agent", "expected"),
    [
        (
            {"add": {"python": "mytools:add"}},
            {"tools": ["ad"]},
            "agent 'a': unknown tool 'ad'; did you mean 'add'?",
        ),
        (
            {"add": {"python": "nosuchmodule:add"}},
            {"tools": ["add"]},
            "tools.add.python: cannot import module 'nosuchmodule'",
        ),
        (
            {"add": {"python": "mytools:not_a_function"}},
            {"tools": ["add"]},
            "tools.add.python: 'mytools:not_a_function' is int, not a function",
        ),
        (
            {"add": {"python": "mytools:ad"}},
            {"tools": ["add"]},
            "tools.add.python: module 'mytools' has no 'ad'; did you mean 'add'?",
        ),
        (
            {"add": {"python": "mytools"}},
            {"tools": ["add"]},
            'tools.add.python must be "module:function"',
        ),
        (
            {"add": {"python": "mytools:add"}},
            {"tools": ["add"], "max_turns": 0},
            "agent 'a': max_turns must be at least 1 (got 0)",
        ),
        (
            {"add": {"python": "mytools:add", "allow": ["x"]}},
            {"tools": ["add"]},
            "tools.add.allow is for MCP servers",
        ),
        (
            {"add": {"python": "mytools:add"}},
            {"tools": ["add.x"]},
            "'add' is a Python tool, not an MCP server",
        ),
        (
            {"add": {"python": "mytools:add", "prefix": "x_"}, "x_add": {"python": "mytools:add"}},
            {"tools": ["add", "x_add"]},
            "'x_add' and 'add' would both reach the model as 'x_add'; give one of them a prefix:",
        ),
        (
            {"add": {"python": "mytools:add"}},
            {"tools": ["add"], "provider": "local", "model": "smollm2"},
            "agent 'a' has tools, but provider 'local' (local) cannot make tool calls (llama-cpp-python's chat "
            "templates ignore tools unless one tool is forced; to give a local model tools, serve it with",
        ),
    ],
    ids=[
        "unknown",
        "no-module",
        "not-callable",
        "no-function",
        "no-colon",
        "max-turns",
        "allow-on-python",
        "dot-on-python",
        "collision",
        "local-model",
    ],
)
def test_bad_tool_input_is_refused_before_any_call(
    folder: Path, tools: dict[str, Any], agent: dict[str, Any], expected: str
) -> None:
    if agent.get("provider") == "local":
        pytest.importorskip("llama_cpp")
        from agentops.providers.local import bundled_model_path

        if bundled_model_path() is None:
            pytest.skip("the bundled model is not installed")
    with OpenAITestServer() as server:
        path = flow(folder, server, agent, tools=tools)
        with pytest.raises(WorkflowError) as caught:
            agentops.run(path, db=folder / "h.db")
        assert server.requests == []
    message = str(caught.value)
    assert expected in message, message
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: ", message), message  # file:line:column
    assert not (folder / "h.db").exists()
