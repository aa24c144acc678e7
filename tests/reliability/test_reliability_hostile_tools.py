"""Hostile tools: Python tools that exit, raise KeyboardInterrupt, return raw bytes or block
the event loop; MCP stdio servers that leave a grandchild ignoring SIGTERM, flood stderr, or
print a secret or garbage to stdout. Each ends as a tool error or a note kept with the
server's stderr — never a traceback, a hung run, a live process after the run or a shown
key. Real ``agentops`` processes, real MCP servers built with the official SDK."""

from __future__ import annotations

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
from agentops.errors import ToolServerError
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
from tests.support.tool import processes_running, tool_workflow

KEY_ENV = "AGENTOPS_HOSTILE_TOOLS_KEY"
SECRET = "kb-secret-token-0123456789"

HOSTILE_TOOLS = '''
import asyncio, pathlib, sys, time

def exits() -> str:
    """Exits."""
    sys.exit(3)

async def exits_async() -> str:
    """Exits, from a coroutine."""
    sys.exit(3)

def interrupts() -> str:
    """Raises KeyboardInterrupt."""
    raise KeyboardInterrupt

async def interrupts_async() -> str:
    """Raises KeyboardInterrupt, from a coroutine."""
    raise KeyboardInterrupt

def raw() -> bytes:
    """Returns bytes that are not UTF-8."""
    return b"\\xff\\xfe"

async def raw_async() -> bytes:
    """Returns bytes that are not UTF-8, from a coroutine."""
    return b"\\xff\\xfe"

def nested_raw() -> dict:
    """Returns bytes inside a dict."""
    return {"data": b"\\xff"}

async def blocks(seconds: float) -> str:
    """Blocks the event loop it runs on."""
    pathlib.Path(__file__).with_name("blocking.started").write_text("yes")
    time.sleep(seconds)
    return "woke up"

first_loop = None

async def which_loop() -> str:
    """Says whether it runs on the loop of its first call (a client kept between calls needs that)."""
    global first_loop
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    if first_loop is None:
        first_loop = loop
        return "first call"
    return "the same loop" if loop is first_loop else "another loop"
'''

# Starts a grandchild that stays in the server's process group and ignores SIGTERM, then
# serves; the server itself exits as soon as its stdin closes, as MCP servers do.
SPAWNING_SERVER = '''
import subprocess, sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("spawner")

@server.tool()
def ping() -> str:
    """Answers pong."""
    return "pong"

if __name__ == "__main__":
    marker, pid_file = sys.argv[1], sys.argv[2]
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)", marker],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    )
    with open(pid_file, "w") as out:
        out.write(str(child.pid))
    server.run()
'''

# Writes ``megabytes`` MB to stderr, then the secret placed so that the 64 KB kept begin
# inside it, then a last line; then serves.
FLOODING_SERVER = '''
import os, sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("flood")

@server.tool()
def ping() -> str:
    """Answers pong."""
    return "pong"

if __name__ == "__main__":
    block = b"x" * (1024 * 1024 - 1) + b"\\n"
    for _ in range(int(sys.argv[1])):
        sys.stderr.buffer.write(block)
    secret, last = os.environ["KB_TOKEN"].encode(), "the last line: ü\\n".encode()
    filler = 64 * 1024 - (len(secret) - 10) - 2 - len(last)
    sys.stderr.buffer.write(secret + b"\\n" + b"y" * filler + b"\\n" + last)
    sys.stderr.flush()
    server.run()
'''

# Prints lines to stdout that are not MCP messages (one with the secret), then serves or sleeps.
NOISY_SERVER = '''
import os, sys, time
from mcp.server.mcpserver import MCPServer

server = MCPServer("noisy")

@server.tool()
def ping() -> str:
    """Answers pong."""
    return "pong"

if __name__ == "__main__":
    print(f"token is {os.environ['KB_TOKEN']}", flush=True)
    for number in range(int(sys.argv[1])):
        print(f"garbage {number}", flush=True)
    if sys.argv[2] == "serve":
        server.run()
    else:
        time.sleep(60)
'''


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-hostile-tools-test")
    monkeypatch.setenv("KB_TOKEN", SECRET)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "hostile.py").write_text(HOSTILE_TOOLS, encoding="utf-8")
    yield tmp_path
    sys.modules.pop("hostile", None)


def python_tools(*names: str, timeout: float = 30) -> dict[str, Any]:
    return {name: {"python": f"hostile:{name}", "timeout": timeout} for name in names}


def call_each_once(*names: str) -> Any:
    """A ``reply`` hook: call every tool named, in one turn, then answer."""

    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        if tool_results(body) == 0:
            return ScriptedReply("", tuple(ScriptedToolCall(name, {}) for name in names))
        return "carried on"

    return reply


def tool_messages(server: OpenAITestServer) -> list[str]:
    return [m["content"] for m in server.requests[-1].body["messages"] if m["role"] == "tool"]


# --- Python tools ---------------------------------------------------------------------------


def test_tools_that_exit_or_raise_keyboard_interrupt_are_tool_errors_and_the_run_carries_on(
    folder: Path,
) -> None:
    names = ("exits", "exits_async", "interrupts", "interrupts_async")
    with OpenAITestServer(reply=call_each_once(*names)) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            python_tools(*names),
            [{"name": "a", "tools": list(names)}],
            key_env=KEY_ENV,
        )
        completed = run_agentops(
            "run", path, "--db", folder / "h.db", env=cli_env(**{KEY_ENV: "k"})
        )
        results = tool_messages(server)
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert results == [
        "error: the tool raised SystemExit(3)",
        "error: the tool raised SystemExit(3)",
        "error: the tool raised KeyboardInterrupt",
        "error: the tool raised KeyboardInterrupt",
    ]
    assert [tuple(r) for r in rows(folder / "h.db", "SELECT status FROM workflow_runs")] == [
        ("succeeded",)
    ]
    recorded = rows(folder / "h.db", "SELECT tool, status, error FROM tool_calls ORDER BY tool")
    assert [tuple(r) for r in recorded] == [
        ("exits", "failed", "the tool raised SystemExit(3)"),
        ("exits_async", "failed", "the tool raised SystemExit(3)"),
        ("interrupts", "failed", "the tool raised KeyboardInterrupt"),
        ("interrupts_async", "failed", "the tool raised KeyboardInterrupt"),
    ]


def test_tools_returning_bytes_that_are_not_utf8_text_are_tool_errors(folder: Path) -> None:
    names = ("raw", "raw_async", "nested_raw")
    with OpenAITestServer(reply=call_each_once(*names)) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            python_tools(*names),
            [{"name": "a", "tools": list(names)}],
            key_env=KEY_ENV,
        )
        result = agentops.run(path, db=folder / "h.db")
        results = tool_messages(server)
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED and agent.output == "carried on", agent.error
    assert results[:2] == ["error: the tool returned bytes that are not UTF-8 text"] * 2
    assert results[2].startswith(
        "error: the tool returned a value that cannot be written as JSON ("
    ), results[2]
    assert [c.status for c in agent.tool_calls] == ["failed"] * 3


def test_an_async_tool_that_blocks_the_event_loop_is_abandoned_at_its_timeout(folder: Path) -> None:
    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        done = tool_results(body)
        if done == 0:
            return ScriptedReply("", (ScriptedToolCall("blocks", {"seconds": 30}),))
        if done == 1:
            return ScriptedReply(
                "", (ScriptedToolCall("which_loop", {}), ScriptedToolCall("which_loop", {}))
            )
        return "carried on"

    tools = {**python_tools("blocks", timeout=0.5), **python_tools("which_loop")}
    with OpenAITestServer(reply=reply) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            tools,
            [{"name": "a", "tools": ["blocks", "which_loop"]}],
            key_env=KEY_ENV,
        )
        started = time.monotonic()
        result = agentops.run(path, db=folder / "h.db")
        took = time.monotonic() - started
        results = tool_messages(server)
    agent = result.agents["a"]
    assert agent.status is AgentStatus.SUCCEEDED and agent.output == "carried on", agent.error
    assert took < 15  # not the 30 s the tool sleeps
    # The blocked loop is left behind; the next calls run on another one, and share it.
    assert results == [
        "error: no result within 0.5s (the tool's timeout)",
        "first call",
        "the same loop",
    ]


def test_calls_of_async_tools_share_one_event_loop(folder: Path) -> None:
    with OpenAITestServer(reply=call_tool_until("which_loop", turns=3)) as server:
        path = tool_workflow(
            folder,
            server.base_url,
            python_tools("which_loop"),
            [{"name": "a", "tools": ["which_loop"]}],
            key_env=KEY_ENV,
        )
        result = agentops.run(path)
        results = tool_messages(server)
    assert result.ok
    assert results == ["first call", "the same loop", "the same loop"]


def test_sigint_stops_a_run_whose_async_tool_blocks_the_event_loop(folder: Path) -> None:
    tools = python_tools("blocks", timeout=120)
    with OpenAITestServer(reply=call_tool_until("blocks", {"seconds": 60}, turns=1)) as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["blocks"]}], key_env=KEY_ENV
        )
        db = folder / "h.db"
        process = start_agentops("run", path, "--db", db, env=cli_env(**{KEY_ENV: "k"}))
        try:
            wait_until(lambda: (folder / "blocking.started").exists() or process.poll() is not None)
            assert process.poll() is None, process.communicate()
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=20)  # not the 60 s the tool sleeps
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stdout + stderr
    assert [tuple(r) for r in rows(db, "SELECT status FROM workflow_runs")] == [("interrupted",)]
    assert [tuple(r) for r in rows(db, "SELECT tool, status FROM tool_calls")] == [
        ("blocks", "cancelled")
    ]


# --- MCP stdio servers ----------------------------------------------------------------------


def test_a_grandchild_that_ignores_sigterm_does_not_outlive_the_run(folder: Path) -> None:
    (folder / "spawner.py").write_text(SPAWNING_SERVER, encoding="utf-8")
    marker = uuid.uuid4().hex
    tools = {
        "kb": {"mcp": {"command": sys.executable, "args": ["spawner.py", marker, "grandchild.pid"]}}
    }
    alive_at_first_call: list[bool] = []

    def reply(body: dict[str, Any]) -> str | ScriptedReply:
        if not alive_at_first_call:
            alive_at_first_call.append(bool(processes_running(marker)))
        return call_tool_until("ping", turns=1)(body)

    try:
        with OpenAITestServer(reply=reply) as server:
            path = tool_workflow(
                folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
            )
            result = agentops.run(path)
        assert result.ok, result.agents["a"].error
        assert alive_at_first_call == [True]
        wait_until(lambda: processes_running(marker) == [], timeout=5)
    finally:
        with_pid = folder / "grandchild.pid"
        if with_pid.exists() and processes_running(marker):
            os.kill(int(with_pid.read_text()), signal.SIGKILL)


# VmHWM, not getrusage's ru_maxrss: Linux carries the parent's high-water mark over fork and
# exec into ru_maxrss, so a probe started from a large pytest process reported pytest's size.
PEAK_MEMORY_PROBE = (
    "import re, sys, agentops\n"
    "result = agentops.run(sys.argv[1], db=sys.argv[2])\n"
    "status = open('/proc/self/status').read()\n"
    "print(result.ok, int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) // 1024)\n"
)


def test_a_server_flooding_stderr_keeps_only_its_end_without_reading_it_whole(folder: Path) -> None:
    (folder / "flood.py").write_text(FLOODING_SERVER, encoding="utf-8")
    tools = {
        "kb": {
            "mcp": {
                "command": sys.executable,
                "args": ["flood.py", "200"],
                "env": {"KB_TOKEN": "${KB_TOKEN}"},
            },
            "startup_timeout": 120,
        }
    }
    with OpenAITestServer(reply=call_tool_until("ping", turns=1)) as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )
        probe = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY_PROBE, str(path), str(folder / "h.db")],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=folder,
            env=cli_env(**{KEY_ENV: "k"}),
        )
    assert probe.returncode == 0, probe.stderr
    ok, peak_megabytes = probe.stdout.split()
    assert ok == "True"
    assert int(peak_megabytes) < 150, f"peak RSS {peak_megabytes} MB for 200 MB of stderr"
    (kept,) = rows(folder / "h.db", "SELECT stderr FROM tool_servers")
    assert kept["stderr"].endswith("y\nthe last line: ü\n")
    assert 60 * 1024 < len(kept["stderr"].encode()) <= 64 * 1024
    assert SECRET[10:] not in kept["stderr"]  # the cut fell inside the secret: still masked


def test_a_secret_a_server_prints_to_stdout_is_masked_and_kept_with_its_stderr(
    folder: Path,
) -> None:
    (folder / "noisy.py").write_text(NOISY_SERVER, encoding="utf-8")
    tools = {
        "kb": {
            "mcp": {
                "command": sys.executable,
                "args": ["noisy.py", "0", "serve"],
                "env": {"KB_TOKEN": "${KB_TOKEN}"},
            }
        }
    }
    with OpenAITestServer(reply=call_tool_until("ping", turns=1)) as server:
        path = tool_workflow(
            folder, server.base_url, tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
        )
        completed = run_agentops(
            "run", path, "--db", folder / "h.db", env=cli_env(**{KEY_ENV: "k", "KB_TOKEN": SECRET})
        )
        assert tool_messages(server) == ["pong"]
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr
    assert SECRET not in output and "Traceback" not in output and "JSONRPC" not in output
    (kept,) = rows(folder / "h.db", "SELECT stderr FROM tool_servers")
    assert kept["stderr"].splitlines()[-1] == (
        "[agentops] the server wrote 1 line to stdout that is not an MCP message (ignored): token is ***"
    )
    assert SECRET.encode() not in database_bytes(folder / "h.db")


def test_a_server_printing_only_garbage_to_stdout_fails_in_one_line(folder: Path) -> None:
    (folder / "noisy.py").write_text(NOISY_SERVER, encoding="utf-8")
    tools = {
        "kb": {
            "mcp": {
                "command": sys.executable,
                "args": ["noisy.py", "400", "sleep"],
                "env": {"KB_TOKEN": "${KB_TOKEN}"},
            },
            "startup_timeout": 3,
        }
    }
    path = tool_workflow(
        folder, "http://127.0.0.1:9/v1", tools, [{"name": "a", "tools": ["kb"]}], key_env=KEY_ENV
    )
    completed = run_agentops(
        "run", path, "--db", folder / "h.db", env=cli_env(**{KEY_ENV: "k", "KB_TOKEN": SECRET})
    )
    assert completed.returncode == 2
    output = completed.stdout + completed.stderr
    assert SECRET not in output and "Traceback" not in output and "JSONRPC" not in output
    assert completed.stderr == (
        f"error: MCP server 'kb' ({sys.executable} noisy.py 400 sleep) did not complete the MCP handshake within 3s "
        "(startup_timeout); it wrote 401 lines to stdout that are not MCP messages (ignored), the first: token is *** "
        "(no model was called)\n"
    )


def test_in_library_use_the_sdk_warnings_about_a_server_reach_no_handler(folder: Path) -> None:
    import logging

    (folder / "noisy.py").write_text(NOISY_SERVER, encoding="utf-8")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    tools = {
        "kb": {
            "mcp": {
                "command": sys.executable,
                "args": ["noisy.py", "3", "sleep"],
                "env": {"KB_TOKEN": "${KB_TOKEN}"},
            },
            "startup_timeout": 2,
        }
    }
    try:
        path = tool_workflow(
            folder,
            "http://127.0.0.1:9/v1",
            tools,
            [{"name": "a", "tools": ["kb"]}],
            key_env=KEY_ENV,
        )
        with pytest.raises(
            ToolServerError, match=r"it wrote 4 lines to stdout that are not MCP messages"
        ):
            agentops.run(path)
    finally:
        logging.getLogger().removeHandler(handler)
    # The SDK's warnings about the server (one per line, each with a traceback showing the
    # line and its secret) are kept with the server, not passed to the application's handlers.
    assert [(r.name, r.getMessage()) for r in seen if r.name.startswith(("mcp", "client"))] == []
