"""Model output is data, never terminal instructions: ANSI colours, cursor moves, OSC 8
hyperlinks, OSC 52 clipboard writes and Rich markup in a reply are shown inert by
``agentops run`` (a real process, plain output) and ``agentops show-workflow-run``."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support import ROOT
from tests.support.reliability import agentops_command, cli_env, run_agentops, write_workflow

HOSTILE = (
    "\x1b[31mred\x1b[0m "
    "\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07 "
    "\x1b]52;c;cm0gLXJmIH4=\x07"
    "\x1b[2J\x1b[H"
    "\x9b31m"
    "[bold red]markup stays literal[/bold red] [link=https://evil.example/]link[/link] "
    "\u202eevil\u202c"
)
# What must never reach a terminal, whatever else the view prints itself.
FORBIDDEN = ("\x1b]52", "\x1b]8;;https://evil", "\x1b[31mred", "\x1b[2J", "\x9b", "\u202e")
LITERAL = "[bold red]markup stays literal[/bold red]"


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01, reply=lambda body: HOSTILE) as running:
        yield running


@pytest.fixture
def flow(tmp_path: Path, server: OpenAITestServer) -> Path:
    agents = [{"name": "writer"}, {"name": "editor", "depends_on": "writer"}]
    return write_workflow(tmp_path / "flow.yaml", server.base_url, agents)


def test_plain_run_and_history_show_hostile_output_inert(tmp_path: Path, flow: Path) -> None:
    db = tmp_path / "history.db"
    run = subprocess.run(
        agentops_command("run", flow, "--db", db),
        capture_output=True,
        env=cli_env(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert b"\x1b" not in run.stdout + run.stderr and b"\xc2\x9b" not in run.stdout + run.stderr
    assert LITERAL in run.stdout.decode()  # the final output is shown, its markup as text
    for args in (("show-workflow-run", "1"), ("list-runs",), ("list-workflow-runs",)):
        shown = subprocess.run(
            agentops_command(*args, "--db", db),
            capture_output=True,
            env=cli_env(),
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert b"\x1b" not in shown.stdout + shown.stderr, args
    history = run_agentops("show-workflow-run", "1", "--db", db)
    assert LITERAL in history.stdout


def test_live_view_in_a_terminal_keeps_hostile_output_inert(tmp_path: Path, flow: Path) -> None:
    """On a real terminal (a pty) the view draws with its own escapes, but none from the model."""
    db = tmp_path / "history.db"
    primary, secondary = pty.openpty()
    env = cli_env(TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        agentops_command("run", flow, "--db", db),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        cwd=ROOT,
        close_fds=True,
    )
    os.close(secondary)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the other side closed: the process is done
            break
        if not chunk:
            break
        seen.extend(chunk)
    os.close(primary)
    assert process.wait(timeout=60) == 0, bytes(seen).decode(errors="replace")
    text = bytes(seen).decode("utf-8", errors="replace")
    assert "\x1b" in text  # it really was a terminal
    for sequence in FORBIDDEN:
        assert sequence not in text, repr(sequence)
    assert "markup stays literal" in text
