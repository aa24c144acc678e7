"""Approval gates in the engine, through the Python API against the test server: a wait ends
the run ``waiting`` (exit 3) while other branches finish; decisions recorded in the history
carry into ``resume`` (approve, send back, reject), each recorded once and applied once, in
either store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.errors import UsageError
from agentops.runtime.events import AgentStatus, RunStatus, SkipCause
from agentops.store import SqliteHistoryWriter
from agentops.store.stores import open_database
from agentops.testing.server import OpenAITestServer
from tests.support.engine import workflow_on


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def decide(db: str | Path, run_id: int, agent: str, verdict: str, text: str | None = None) -> None:
    with open_database(db) as store:
        SqliteHistoryWriter(store).decide_approval(run_id, agent, verdict, by="ann", text=text)


def prompts(server: OpenAITestServer) -> list[str]:
    return [str(r.body["messages"][-1]["content"]) for r in server.requests]


AGENTS: list[dict[str, Any]] = [
    {"name": "notes", "approval": "after", "task": "Write notes."},
    {
        "name": "send",
        "depends_on": "notes",
        "approval": "before",
        "task": "Send {{ notes.output }}",
    },
    {"name": "side", "task": "Side work."},
]


def test_waits_end_the_run_waiting_while_other_branches_finish(
    server: OpenAITestServer, db: str
) -> None:
    first = agentops.run(workflow_on(server, AGENTS), db=db)
    assert first.status is RunStatus.WAITING and first.exit_code == 3
    notes, send, side = (first.agents[n] for n in ("notes", "send", "side"))
    assert notes.status is AgentStatus.WAITING_APPROVAL and notes.awaiting is not None
    assert notes.awaiting.mode == "after" and notes.output  # its answer waits
    assert send.status is AgentStatus.WAITING and send.error == "waits for the approval of notes"
    assert side.status is AgentStatus.SUCCEEDED
    assert sorted(p.split()[0] for p in prompts(server)) == ["Side", "Write"]

    # Sent back: notes answers again with the feedback (a new call, paid for), then waits.
    decide(db, 1, "notes", "revise", "Shorter.")
    with pytest.raises(
        UsageError, match=r"was already sent back by ann at .*; a decision is recorded once"
    ):
        decide(db, 1, "notes", "approved")
    second = agentops.resume(1, db=db)
    with pytest.raises(UsageError, match="applied by workflow run 2; nothing to decide"):
        decide(db, 1, "notes", "approved")
    assert second.status is RunStatus.WAITING
    assert prompts(server)[-1].endswith("answer again, following it:\nShorter.")
    assert second.agents["notes"].cost == second.cost > 0
    assert second.agents["side"].reused

    # Approved: its answer goes on, not asked again; send now waits before its call.
    decide(db, 2, "notes", "approved")
    calls = len(server.requests)
    third = agentops.resume(2, db=db)
    assert len(server.requests) == calls  # neither notes nor send called a model
    assert third.agents["notes"].status is AgentStatus.SUCCEEDED
    send = third.agents["send"]
    assert send.status is AgentStatus.WAITING_APPROVAL and send.awaiting is not None
    assert send.prompt is not None and second.agents["notes"].output in send.prompt
    assert third.cost == 0  # a wait holds no reservation and spends nothing

    # Rejected: send fails with the reason; the run is over, failed.
    decide(db, 3, "send", "rejected", "Not today.")
    fourth = agentops.resume(3, db=db)
    assert fourth.status is RunStatus.FAILED and fourth.exit_code == 1
    assert fourth.agents["send"].error == "rejected by ann: Not today."
    assert not any(p.startswith("Send") for p in prompts(server))


def test_a_dependent_of_a_rejected_agent_is_skipped(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    agents = [
        {"name": "gate", "approval": "before", "task": "Go."},
        {"name": "after", "depends_on": "gate", "task": "After."},
    ]
    assert agentops.run(workflow_on(server, agents), db=db).status is RunStatus.WAITING
    decide(db, 1, "gate", "rejected", "no")
    result = agentops.resume(1, db=db)
    assert result.agents["after"].skip_cause is SkipCause.DEPENDENCY
    assert server.requests == []
    assert result.status is RunStatus.FAILED and result.exit_code == 1
