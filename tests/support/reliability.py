"""Shared pieces of the reliability suite: workflow files that call the local test
server, real ``agentops`` processes (and its entry point run in this process), and reading
the history database directly (with ``sqlite3``, not through the store, so a store bug
cannot hide itself)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

KEY_ENV = "AGENTOPS_RELIABILITY_KEY"
KEY = "sk-reliability-5ecret-0f-the-named-provider"

# Every task starts with this, so a request on the server can be traced back to its agent.
_AGENT_TASK = re.compile(r"^agent ([\w\-]+):")

# Variables that must not leak in from the machine running the tests.
_CLEARED = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_GPT5_KEY",
    "AZURE_GPT5_ENDPOINT",
    "AZURE_GPT5_VERSION",
    "AZURE_GPT5_DEPLOYMENT",
    "AGENTOPS_DB",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
)


def task_for(name: str, text: str = "do your part.") -> str:
    return f"agent {name}: {text}"


def agent_of(body: Mapping[str, Any]) -> str | None:
    """The agent that sent a chat request, read from its last message (the task comes first)."""
    messages = body.get("messages") or []
    if not messages:
        return None
    match = _AGENT_TASK.match(str(messages[-1].get("content", "")))
    return match.group(1) if match else None


def workflow_document(
    base_url: str,
    agents: Iterable[Mapping[str, Any]],
    *,
    name: str = "reliability",
    policies: Mapping[str, Any] | None = None,
    prices: Mapping[str, Any] | None = None,
    provider: str = "test",
    key_env: str = KEY_ENV,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A workflow whose agents call ``base_url`` through a named OpenAI-compatible provider."""
    document: dict[str, Any] = {
        "name": name,
        "policies": {"backoff": {"base": 0.01, "max": 0.05}, **(policies or {})},
        "providers": {provider: {"base_url": base_url, "api_key_env": key_env}},
        "agents": [
            {"model": "gpt-4o-mini", "provider": provider, "task": task_for(str(a["name"])), **a}
            for a in agents
        ],
    }
    if prices is not None:
        document["prices"] = dict(prices)
    if inputs is not None:
        document["inputs"] = dict(inputs)
    return document


def write_workflow(
    path: Path, base_url: str, agents: Iterable[Mapping[str, Any]], **options: Any
) -> Path:
    path.write_text(
        yaml.safe_dump(
            workflow_document(base_url, agents, **options), sort_keys=False, allow_unicode=True
        ),
        encoding="utf-8",
    )
    return path


def layered_agents(names_by_layer: list[list[str]]) -> list[dict[str, Any]]:
    """Agents in layers; each depends on every agent of the layer before."""
    agents: list[dict[str, Any]] = []
    previous: list[str] = []
    for layer in names_by_layer:
        for name in layer:
            agent: dict[str, Any] = {"name": name}
            if previous:
                agent["depends_on"] = list(previous)
            agents.append(agent)
        previous = layer
    return agents


# --- real processes ---------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of an ``agentops`` process: no inherited credentials, plain output."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED and not k.startswith("OTEL_")}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "120", KEY_ENV: KEY})
    env.update(extra)
    return env


def agentops_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "agentops", *map(str, args)]


def run_agentops(
    *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``agentops ARGS`` to completion in a real process (stdout not a terminal)."""
    return subprocess.run(
        agentops_command(*args),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=dict(env) if env is not None else cli_env(),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def start_agentops(
    *args: str | Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        agentops_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else cli_env(),
        cwd=ROOT,
    )


def wait_until(condition: Callable[[], bool], *, timeout: float = 30.0, poll: float = 0.01) -> None:
    """Poll until ``condition()`` holds; a scenario that never gets there fails loudly."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout:g}s")
        time.sleep(poll)


def json_of(completed: subprocess.CompletedProcess[str]) -> Any:
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


# --- the command line in this process ------------------------------------------------------


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str | Path) -> Outcome:
    """``agentops ARGS`` through the real entry point, ``main()``, in this process."""
    from typer.testing import CliRunner

    from agentops.cli.app import main  # here: most users of this module run real processes

    runner = CliRunner()
    argv = sys.argv
    with runner.isolation() as (stdout, stderr, _):
        sys.argv = ["agentops", *map(str, args)]
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
        else:  # main always exits
            code = -1
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
        return Outcome(
            code,
            stdout.getvalue().decode("utf-8", "replace"),
            stderr.getvalue().decode("utf-8", "replace"),
        )


# --- the history database, read directly ---------------------------------------------------


def rows(db: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    connection = sqlite3.connect(db, timeout=30)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def integrity_check(db: Path) -> str:
    return str(rows(db, "PRAGMA integrity_check")[0][0])


def database_bytes(db: Path) -> bytes:
    """The database file and its WAL / rollback journal / shared-memory companions, if any."""
    return b"".join(
        candidate.read_bytes()
        for candidate in (
            db,
            *(db.with_name(db.name + suffix) for suffix in ("-wal", "-journal", "-shm")),
        )
        if candidate.exists()
    )


def workflow_runs(db: Path) -> list[sqlite3.Row]:
    """Every workflow run recorded; none when the database or its schema does not exist yet."""
    if not db.exists() or not rows(db, "SELECT 1 FROM sqlite_master WHERE name = 'workflow_runs'"):
        return []
    return rows(db, "SELECT * FROM workflow_runs ORDER BY id")


def agent_runs(db: Path, workflow_run_id: int) -> dict[str, sqlite3.Row]:
    """The runs rows of one workflow run, by agent name."""
    found = rows(db, "SELECT * FROM runs WHERE workflow_run_id = ? ORDER BY id", workflow_run_id)
    return {row["agent"]: row for row in found}


def attempts_of(db: Path, run_id: int) -> list[sqlite3.Row]:
    return rows(db, "SELECT * FROM attempts WHERE run_id = ? ORDER BY number", run_id)
