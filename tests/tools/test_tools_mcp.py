"""MCP servers built with the official SDK, over stdio and streamable HTTP, started by the
tests: listing, allow, calls, isError results, a server killed mid-run, one that cannot
start, secrets in env and headers, stderr kept with the run, and SIGINT during a call with
the process table checked for orphans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.errors import ToolServerError, WorkflowError
from agentops.runtime.events import AgentStatus
from agentops.testing.server import (
    OpenAITestServer,
    ScriptedReply,
    ScriptedToolCall,
    call_tool_until,
    tool_results,
)
from tests.support.reliability import (
    cli_env,
    database_bytes,
    rows,
    run_agentops,
    start_agentops,
    wait_until,
)
from tests.support.tool import (
    processes_running,
    stdio_server,
    tool_workflow,
    write_kb_server,
)

KEY_ENV = "AGENTOPS_MCP_KEY"
SECRET = "kb-secret-token-0123456789"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-mcp-test")
    monkeypatch.setenv("KB_TOKEN", SECRET)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    write_kb_server(tmp_path)
    yield tmp_path


def last_tool_result(server: OpenAITestServer) -> str:
    return [m for m in server.requests[-1].body["messages"] if m["role"] == "tool"][-1]["content"]


def test_a_stdio_server_is_started_listed_called_and_closed(folder: Path) -> None:
    marker = uuid.uuid4().hex
    tools = {
        "kb": stdio_server(
            mcp={"args": ["kb_server.py", marker], "env": {"KB_TOKEN": "${KB_TOKEN}"}},
            allow=["lookup", "fail"],
        )
    }
    with OpenAITestServer(reply=call_tool_until("lookup", {"key": "alpha"}, turns=1)) as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )
        result = agentops.run(path, db=folder / "h.db")
        offered = [t["function"]["name"] for t in server.requests[0].body["tools"]]
        assert last_tool_result(server) == "1"
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED, agent.error
    assert offered == ["lookup", "fail"]  # allow: only these of the server's four tools
    assert [(c.tool, c.status, c.result) for c in agent.tool_calls] == [
        ("kb.lookup", "succeeded", "1")
    ]
    assert processes_running(marker) == []  # closed with the run

    (server_row,) = rows(folder / "h.db", "SELECT * FROM tool_servers")
    assert server_row["name"] == "kb" and server_row["transport"] == "stdio"
    assert json.loads(server_row["tools"]) == ["lookup", "fail", "hang", "pid"]
    assert "kb server ready" in server_row["stderr"]
    assert "lookup alpha with token ***" in server_row["stderr"]  # the secret is scrubbed
    assert SECRET.encode() not in database_bytes(folder / "h.db")

    shown = run_agentops("show-workflow-run", "1", "--db", folder / "h.db")
    assert (
        shown.returncode == 0
        and "MCP server kb (stdio:" in shown.stdout
        and "kb server ready" in shown.stdout
    )
    detail = json.loads(
        run_agentops("show-workflow-run", "1", "--json", "--db", folder / "h.db").stdout
    )
    assert detail["tool_servers"][0]["name"] == "kb"
    run = json.loads(run_agentops("show-run", "1", "--json", "--db", folder / "h.db").stdout)
    assert [(c["tool"], c["turn"], c["result"]) for c in run["tool_calls"]] == [
        ("kb.lookup", 1, "1")
    ]
    text = run_agentops("show-run", "1", "--db", folder / "h.db").stdout
    assert "1 tool call in 1 turn" in text and "kb.lookup" in text


def test_a_streamable_http_server_with_headers_and_a_prefix(
    folder: Path, http_kb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCS_TOKEN", "docs-secret-abcdef")

    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        if tool_results(body) == 0:
            return ScriptedReply(
                "",
                (
                    ScriptedToolCall("docs_lookup", {"key": "beta"}),
                    ScriptedToolCall("docs_fail", {"reason": "x"}),
                ),
            )
        return "done"

    with OpenAITestServer(reply=reply) as server:
        tools = {
            "docs": {
                "mcp": {"url": http_kb_url, "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
                "prefix": "docs_",
            }
        }
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["docs"]}], key_env=KEY_ENV
        )
        result = agentops.run(path, db=folder / "h.db")
        results = [
            m["content"] for m in server.requests[-1].body["messages"] if m["role"] == "tool"
        ]
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED, agent.error
    assert results[0] == "2"
    assert results[1].startswith("error: ")  # the MCP isError result goes back to the model
    calls = {c.tool: c for c in agent.tool_calls}
    assert calls["docs.fail"].status == "failed" and calls["docs.lookup"].status == "succeeded"
    (server_row,) = rows(folder / "h.db", "SELECT transport, target FROM tool_servers")
    assert tuple(server_row) == ("http", http_kb_url)
    assert b"docs-secret-abcdef" not in database_bytes(folder / "h.db")


def test_a_server_killed_mid_run_gives_tool_errors_not_a_crash(folder: Path) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        done = tool_results(body)
        if done == 0:
            return ScriptedReply("", (ScriptedToolCall("pid", {}),))
        if done == 1:
            pid = int(next(m for m in body["messages"] if m["role"] == "tool")["content"])
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
            return ScriptedReply("", (ScriptedToolCall("lookup", {"key": "alpha"}),))
        return "carried on without it"

    with OpenAITestServer(reply=reply) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            {"kb": stdio_server()},
            [{"name": "a", "tools": ["kb"]}],
            key_env=KEY_ENV,
        )
        result = agentops.run(path, db=folder / "h.db")
        second = last_tool_result(server)
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED and agent.output == "carried on without it"
    assert [c.status for c in agent.tool_calls] == ["succeeded", "failed"]
    assert second.startswith("error: ") and "kb" in second
    assert result.ok


def test_allow_naming_a_tool_the_server_lacks_stops_before_any_call(folder: Path) -> None:
    tools = {"kb": stdio_server(allow=["lookup", "lokup"])}
    with OpenAITestServer() as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )
        completed = run_agentops(
            "run", path, "--db", folder / "h.db", env=cli_env(**{KEY_ENV: "k"})
        )
        assert server.requests == []
    assert completed.returncode == 2, completed.stderr
    assert f"{path}:" in completed.stderr
    assert (
        "tools.kb.allow names 'lokup', which MCP server 'kb' does not have; did you mean 'lookup'?"
        in completed.stderr
    )
    assert "Traceback" not in completed.stderr


def test_a_pick_of_a_tool_the_server_lacks_stops_before_any_call(folder: Path) -> None:
    with OpenAITestServer() as server:
        path = tool_workflow(
            folder,
            server.base_url,
            {"kb": stdio_server()},
            [{"name": "a", "tools": ["kb.lookp"]}],
            key_env=KEY_ENV,
        )
        with pytest.raises(
            WorkflowError,
            match=r"agent 'a': MCP server 'kb' has no tool 'lookp'; did you mean 'lookup'\?",
        ):
            agentops.run(path)
        assert server.requests == []


def test_a_server_that_cannot_start_is_exit_2_with_its_stderr(folder: Path) -> None:
    (folder / "broken.py").write_text(
        "import sys\nprint('broken: missing setting', file=sys.stderr)\nsys.exit(3)\n"
    )
    tools = {"kb": {"mcp": {"command": sys.executable, "args": ["broken.py"]}}}
    with OpenAITestServer() as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )
        completed = run_agentops(
            "run", path, "--db", folder / "h.db", env=cli_env(**{KEY_ENV: "k"})
        )
        assert server.requests == []
    assert completed.returncode == 2
    assert "MCP server 'kb'" in completed.stderr and "broken.py" in completed.stderr
    assert "broken: missing setting" in completed.stderr and "Traceback" not in completed.stderr
    assert (
        not (folder / "h.db").exists()
        or rows(folder / "h.db", "SELECT count(*) FROM workflow_runs")[0][0] == 0
    )


def test_a_run_cancelled_while_its_servers_start_leaves_none_running(folder: Path) -> None:
    marker = uuid.uuid4().hex
    (folder / "silent.py").write_text("import time\ntime.sleep(60)\n")
    tools = {
        "kb": {
            "mcp": {"command": sys.executable, "args": ["silent.py", marker]},
            "startup_timeout": 60,
        }
    }
    with OpenAITestServer() as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )

        async def cancel_during_start() -> list[str]:
            run = asyncio.create_task(agentops.arun(path, db=folder / "h.db"))
            while not processes_running(marker):  # the server is starting, and never answers
                await asyncio.sleep(0.05)
            run.cancel()  # what Ctrl-C does to agentops.run
            with pytest.raises(asyncio.CancelledError):
                await run
            return processes_running(marker)  # before the loop ends: the run closed it itself

        assert asyncio.run(asyncio.wait_for(cancel_during_start(), 60)) == []
        assert server.requests == []


def test_a_missing_command_and_a_slow_handshake_are_named(folder: Path) -> None:
    (folder / "silent.py").write_text("import time\ntime.sleep(30)\n")
    for tools, expected in (
        (
            {"kb": {"mcp": {"command": "no-such-mcp-server-here"}}},
            "command 'no-such-mcp-server-here' not found",
        ),
        (
            {
                "kb": {
                    "mcp": {"command": sys.executable, "args": ["silent.py"]},
                    "startup_timeout": 0.5,
                }
            },
            "did not complete the MCP handshake within 0.5s (startup_timeout)",
        ),
    ):
        path = tool_workflow(
            folder,
            "http://127.0.0.1:9/v1",
            tools,
            [{"name": "a", "tools": ["kb"]}],
            key_env=KEY_ENV,
        )
        with pytest.raises(ToolServerError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            agentops.run(path)
    assert processes_running("silent.py") == []


def test_a_missing_variable_is_named_with_its_line(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KB_TOKEN")
    tools = {"kb": stdio_server(mcp={"env": {"KB_TOKEN": "${KB_TOKEN}"}})}
    path = tool_workflow(
        folder, "http://127.0.0.1:9/v1", tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
    )
    with pytest.raises(WorkflowError) as caught:
        agentops.run(path)
    assert f"{path}:" in str(caught.value)
    assert (
        "tools.kb.mcp.env.KB_TOKEN uses ${KB_TOKEN}, which is not set; set the environment variable KB_TOKEN"
        in str(caught.value)
    )


def test_sigint_during_a_tool_call_leaves_no_orphan(folder: Path) -> None:
    marker = uuid.uuid4().hex
    tools = {"kb": stdio_server(mcp={"args": ["kb_server.py", marker]})}
    with OpenAITestServer(reply=call_tool_until("hang", {"seconds": 120}, turns=1)) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            tools,
            [{"name": "a", "tools": ["kb"]}, {"name": "b", "depends_on": "a"}],
            key_env=KEY_ENV,
        )
        db = folder / "h.db"
        process = start_agentops("run", path, "--db", db, env=cli_env(**{KEY_ENV: "k"}))
        wait_until(
            lambda: (
                (len(server.requests) == 1 and bool(processes_running(marker)))
                or process.poll() is not None
            )
        )
        assert process.poll() is None, process.communicate()
        time.sleep(0.5)  # the call is in flight on the server
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stdout + stderr
    assert processes_running(marker) == []
    (run,) = rows(db, "SELECT * FROM workflow_runs")
    assert run["status"] == "interrupted"
    (call,) = rows(db, "SELECT * FROM tool_calls")
    assert (
        call["status"] == "cancelled" and call["tool"] == "kb.hang" and call["run_id"] is not None
    )
    assert {r["agent"]: r["status"] for r in rows(db, "SELECT agent, status FROM runs")} == {
        "a": "cancelled",
        "b": "cancelled",
    }
    assert rows(db, "SELECT count(*) FROM tool_servers")[0][0] == 1


def test_the_mcp_sdk_is_imported_only_for_workflows_with_mcp_servers(folder: Path) -> None:
    probe = (
        "import sys, agentops\n"
        "from agentops.providers.fake import FakeProvider\n"
        "agentops.run(sys.argv[1], provider=FakeProvider('ok'))\n"
        "print('mcp' in sys.modules)\n"
    )
    path = tool_workflow(folder, "http://127.0.0.1:9/v1", {}, [{"name": "a"}], key_env=KEY_ENV)
    plain = subprocess.run(
        [sys.executable, "-c", probe, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    assert plain.stdout.strip() == "False"
    tools = {"kb": stdio_server()}
    path = tool_workflow(
        folder, "http://127.0.0.1:9/v1", tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
    )
    with_mcp = subprocess.run(
        [sys.executable, "-c", probe, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    assert with_mcp.stdout.strip() == "True"


def test_the_run_timeout_during_a_tool_call_closes_the_server(folder: Path) -> None:
    marker = uuid.uuid4().hex
    tools = {"kb": stdio_server(mcp={"args": ["kb_server.py", marker]})}
    with OpenAITestServer(reply=call_tool_until("hang", {"seconds": 120}, turns=1)) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            tools,
            [{"name": "a", "tools": ["kb"]}],
            key_env=KEY_ENV,
            policies={"timeout": 1.5},
        )
        started_at = time.monotonic()
        result = agentops.run(path, db=folder / "h.db")
    assert time.monotonic() - started_at < 30
    agent = result.agents["a"]
    assert agent.status is AgentStatus.CANCELLED and agent.error == "run timed out after 1.5s"
    assert [c.status for c in agent.tool_calls] == ["cancelled"]
    assert result.status.value == "failed"
    assert processes_running(marker) == []
    assert rows(folder / "h.db", "SELECT status FROM tool_calls")[0]["status"] == "cancelled"
