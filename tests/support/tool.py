"""Pieces of the tool tests: a real MCP server (the official SDK's MCPServer, formerly FastMCP)
written next to the workflow, a module of Python tools, and workflows that use them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

KB_SERVER = '''
import os, sys, time
from mcp.server.mcpserver import MCPServer

server = MCPServer("kb")

@server.tool()
def lookup(key: str) -> str:
    """Look a key up in the knowledge base."""
    print(f"lookup {key} with token {os.environ.get('KB_TOKEN', '-')}", file=sys.stderr, flush=True)
    return {"alpha": "1", "beta": "2"}.get(key, "unknown")

@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)

@server.tool()
def hang(seconds: float) -> str:
    """Sleeps."""
    time.sleep(seconds)
    return "woke up"

@server.tool()
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())

if __name__ == "__main__":
    print("kb server ready", file=sys.stderr, flush=True)
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
'''

PYTHON_TOOLS = '''
import asyncio, threading, time

calls = []
active = 0
most_active = 0
_lock = threading.Lock()

def add(a: int, b: int = 1) -> int:
    """Add two whole numbers.

    Args:
        a: the first number
        b: the second number
    """
    calls.append(("add", a, b))
    return a + b

async def shout(text: str) -> dict:
    """Upper-case some text."""
    await asyncio.sleep(0.01)
    calls.append(("shout", text))
    return {"text": text.upper()}

def explode(reason: str) -> str:
    """Raises."""
    raise RuntimeError(reason)

def sleepy(seconds: float) -> str:
    """Blocks its thread."""
    time.sleep(seconds)
    return "rested"

async def hang() -> str:
    """Never returns."""
    await asyncio.sleep(3600)
    return "never"

def busy(n: int) -> int:
    """Counts how many calls run at once."""
    global active, most_active
    with _lock:
        active += 1
        most_active = max(most_active, active)
    time.sleep(0.1)
    with _lock:
        active -= 1
    return n

not_a_function = 42
'''


def write_kb_server(folder: Path) -> Path:
    path = folder / "kb_server.py"
    path.write_text(KB_SERVER, encoding="utf-8")
    return path


def write_python_tools(folder: Path, name: str = "mytools") -> Path:
    path = folder / f"{name}.py"
    path.write_text(PYTHON_TOOLS, encoding="utf-8")
    return path


def stdio_server(**extra: Any) -> dict[str, Any]:
    """A tools: entry for the kb server over stdio (run by this interpreter, which has mcp)."""
    return {
        "mcp": {"command": sys.executable, "args": ["kb_server.py"], **extra.pop("mcp", {})},
        **extra,
    }


def tool_workflow(
    folder: Path,
    base_url: str,
    tools: dict[str, Any],
    agents: list[dict[str, Any]],
    *,
    key_env: str,
    policies: dict[str, Any] | None = None,
    prices: dict[str, Any] | None = None,
    name: str = "tools_flow",
) -> Path:
    document: dict[str, Any] = {
        "name": name,
        "policies": {"backoff": {"base": 0.01, "max": 0.05}, **(policies or {})},
        "providers": {"test": {"base_url": base_url, "api_key_env": key_env}},
        "tools": tools,
        "agents": [
            {"model": "gpt-4o-mini", "provider": "test", "task": f"do {a['name']}", **a}
            for a in agents
        ],
    }
    if prices is not None:
        document["prices"] = prices
    path = folder / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def processes_running(marker: str) -> list[str]:
    """Command lines of live processes (zombies left out) that contain ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in command and state != "Z":
            found.append(command)
    return found
