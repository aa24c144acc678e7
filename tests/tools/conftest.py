"""The tool tests' fixtures."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port
from tests.support.tool import write_kb_server


@pytest.fixture
def http_kb_url(tmp_path: Path) -> Iterator[str]:
    """The kb server over streamable HTTP on 127.0.0.1, in its own process started in
    ``tmp_path``; yields its URL."""
    write_kb_server(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "kb_server.py", "http", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("the HTTP MCP server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)
