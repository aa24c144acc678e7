"""Approval gates end to end through real ``agentops`` processes: ``examples/approval.yaml``
waits (exit 3), a second process lists and decides, ``resume`` continues; ``--wait`` keeps a
process alive until a decision arrives from another; stale and double decisions are refused;
``revise`` sends an answer back; a timeout applies its ``on_timeout``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    cli_env,
    json_of,
    run_agentops,
    start_agentops,
    wait_until,
)
from tests.support.spec import EXAMPLES

KEY = "sk-approvals-test"


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def env_of(server: OpenAITestServer) -> dict[str, str]:
    return cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)


def prompts(server: OpenAITestServer) -> list[str]:
    return [str(r.body["messages"][-1]["content"]) for r in server.requests]


def agentops(server: OpenAITestServer, *args: str | Path) -> subprocess.CompletedProcess[str]:
    completed = run_agentops(*args, env=env_of(server))
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed


def approvals_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT workflow_run_id, agent, mode, status, decided_by, text, applied_run_id "
            "FROM approvals ORDER BY id"
        ).fetchall()


def recorded_approvals(db: Path) -> int:
    """How many approvals the history holds yet (0 while the run is still creating it)."""
    try:
        return len(approvals_rows(db)) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def test_the_approval_example_waits_and_a_second_process_decides(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    db = tmp_path / "history.db"
    first = agentops(server, "run", EXAMPLES / "approval.yaml", "--db", db)
    # notes ran, its answer waits; announce never started.
    assert first.returncode == 3, first.stderr
    assert "Waiting for approval (exit code 3):" in first.stdout
    assert "  notes (after: review its answer)" in first.stdout
    assert (
        "    agentops approve 1 notes | agentops reject 1 notes --reason TEXT | "
        "agentops revise 1 notes --feedback TEXT" in first.stdout
    )
    assert "Then continue: agentops resume 1" in first.stdout
    assert not any(p.startswith("Write a two-sentence") for p in prompts(server))
    listed = json_of(agentops(server, "approvals", "--json", "--db", db))
    (notes,) = listed
    assert (notes["workflow_run_id"], notes["agent"], notes["mode"], notes["status"]) == (
        1,
        "notes",
        "after",
        "pending",
    )
    assert notes["output"].startswith("reply from gpt-4o-mini to: Write release notes")
    assert "Write release notes for 2.4.0" in notes["prompt"]
    shown = agentops(server, "approvals", "--db", db)
    assert "workflow run 1 · release_notes · notes · after" in shown.stdout
    # Resuming before anything is decided would only wait again: refused, with what to do.
    early = agentops(server, "resume", "1", "--db", db)
    assert early.returncode == 2
    assert "nothing is decided yet; decide first (agentops approve 1 notes" in early.stderr

    approved = agentops(
        server, "approve", "1", "notes", "--comment", "ship it", "--by", "ann", "--db", db
    )
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == (
        "Approved: notes in workflow run 1 (by ann). Continue it: agentops resume 1"
    )
    twice = agentops(server, "reject", "1", "notes", "--reason", "no", "--db", db)
    assert twice.returncode == 2
    assert "was already approved by ann at " in twice.stderr and "recorded once" in twice.stderr
    # revise is only for an answer: announce waits before it runs.
    before = len(server.requests)
    second = agentops(server, "resume", "1", "--db", db)
    assert second.returncode == 3, second.stderr
    again = prompts(server)[before:]
    assert again == []  # notes was not asked again; announce waits before its call
    assert "  announce (before: approve its prompt before it runs)" in second.stdout
    revise = agentops(server, "revise", "2", "announce", "--feedback", "x", "--db", db)
    assert revise.returncode == 2
    assert (
        "waits before it runs (approval: before): there is no answer to send back" in revise.stderr
    )
    # A decision on the first run, taken by the resume, is refused as stale.
    stale = agentops(server, "approve", "1", "notes", "--db", db)
    assert "applied by workflow run 2; nothing to decide" in stale.stderr
    assert agentops(server, "approve", "2", "announce", "--db", db).returncode == 0
    third = agentops(server, "resume", "2", "--db", db, "--json")
    assert third.returncode == 0, third.stderr
    result = json.loads(third.stdout)
    assert result["status"] == "succeeded"
    assert result["agents"]["notes"]["reused"] is True
    (announce,) = [p for p in prompts(server) if p.startswith("Write a two-sentence")]
    assert result["agents"]["notes"]["output"] in announce
    assert approvals_rows(db) == [
        (1, "notes", "after", "approved", "ann", "ship it", 2),
        (2, "announce", "before", "approved", approvals_rows(db)[1][4], None, 3),
    ]


def write(tmp_path: Path, server: OpenAITestServer, agents: list[dict[str, Any]]) -> Path:
    document = {
        "name": "gate",
        "agents": [{"model": "gpt-4o-mini", **agent} for agent in agents],
    }
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_run_wait_continues_as_soon_as_another_process_approves(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    db = tmp_path / "history.db"
    flow = write(
        tmp_path,
        server,
        [
            {"name": "draft", "task": "Draft a post."},
            {"name": "publish", "depends_on": "draft", "approval": "before", "task": "Publish it."},
            {"name": "side", "task": "Unrelated work."},
        ],
    )
    waiting = start_agentops("run", flow, "--db", db, "--wait", env=env_of(server))
    try:
        # Other branches kept running; the gate waits; the process stays.
        wait_until(lambda: recorded_approvals(db) == 1, timeout=60)
        assert sorted(p.split()[0] for p in prompts(server)) == ["Draft", "Unrelated"]
        assert waiting.poll() is None
        decided = agentops(server, "approve", "1", "publish", "--db", db)
        assert decided.returncode == 0, decided.stderr
        out, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 0, err.decode()
    assert "Waiting for a decision on workflow run 1" in out.decode()
    assert len([p for p in prompts(server) if p.startswith("Publish it.")]) == 1
    with sqlite3.connect(db) as connection:
        runs = connection.execute("SELECT id, status, resumed_from FROM workflow_runs").fetchall()
    assert runs == [(1, "waiting", None), (2, "succeeded", 1)]


def test_revise_sends_the_answer_back_with_the_feedback_then_reject_fails_it(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    db = tmp_path / "history.db"
    flow = write(
        tmp_path,
        server,
        [
            {"name": "notes", "approval": "after", "task": "Write notes."},
            {"name": "publish", "depends_on": "notes", "task": "Publish {{ notes.output }}"},
        ],
    )
    assert agentops(server, "run", flow, "--db", db).returncode == 3
    assert (
        agentops(server, "revise", "1", "notes", "--feedback", "Shorter.", "--db", db).returncode
        == 0
    )
    second = agentops(server, "resume", "1", "--db", db)
    assert second.returncode == 3, second.stderr
    revised = prompts(server)[-1]
    assert revised.startswith("Write notes.\n\n--- Your previous answer ---\nreply from")
    assert revised.endswith("answer again, following it:\nShorter.")
    assert (
        agentops(server, "reject", "2", "notes", "--reason", "Off topic", "--db", db).returncode
        == 0
    )
    third = agentops(server, "resume", "2", "--db", db, "--json")
    assert third.returncode == 1
    result = json.loads(third.stdout)
    assert result["agents"]["notes"]["error"].startswith("rejected by ")
    assert result["agents"]["notes"]["error"].endswith(": Off topic")
    assert result["agents"]["publish"]["skip_cause"] == "dependency"
    assert not any(p.startswith("Publish") for p in prompts(server))


def test_a_timed_out_approval_applies_on_timeout(tmp_path: Path, server: OpenAITestServer) -> None:
    db = tmp_path / "history.db"
    gate = {"mode": "before", "timeout": 0.2, "on_timeout": "approve"}
    flow = write(tmp_path, server, [{"name": "go", "approval": gate, "task": "Go."}])
    assert agentops(server, "run", flow, "--db", db).returncode == 3
    wait_until(lambda: "timed out" in agentops(server, "approvals", "--db", db).stdout, timeout=10)
    late = agentops(server, "reject", "1", "go", "--reason", "late", "--db", db)
    assert late.returncode == 2 and "timed out at " in late.stderr
    resumed = agentops(server, "resume", "1", "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    assert prompts(server) == ["Go."]
    (row,) = approvals_rows(db)
    assert row[3:5] == ("approved", "timeout")
