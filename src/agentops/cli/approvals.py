"""Approvals from the command line: what waits (``agentops approvals``), deciding
(``approve`` / ``reject`` / ``revise``), what a waiting run prints, and ``--wait``: a
process that stays until a decision is recorded (from another terminal or the web view)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.text import Text

from agentops.cli.history import clean, preview, print_json
from agentops.errors import UsageError
from agentops.runtime.events import AgentStatus, WorkflowResult
from agentops.store.approvals import timed_out
from agentops.store.reader import HistoryReader
from agentops.store.records import ApprovalRecord
from agentops.ui.sanitize import one_line

POLL_SECONDS = 0.25  # how often --wait looks for a decision


def decision_commands(workflow_run_id: int, agent: str, mode: str) -> str:
    commands = [
        f"agentops approve {workflow_run_id} {agent}",
        f"agentops reject {workflow_run_id} {agent} --reason TEXT",
    ]
    if mode == "after":
        commands.append(f"agentops revise {workflow_run_id} {agent} --feedback TEXT")
    return " | ".join(commands)


def waiting_lines(result: WorkflowResult) -> list[str]:
    """What a run that ended ``waiting`` prints: each pending approval and how to decide it."""
    run_id = result.workflow_run_id
    lines = ["Waiting for approval (exit code 3):"]
    for name, agent in result.agents.items():
        if agent.status is not AgentStatus.WAITING_APPROVAL or agent.awaiting is None:
            continue
        mode = agent.awaiting.mode
        what = "approve its prompt before it runs" if mode == "before" else "review its answer"
        lines.append(f"  {name} ({mode}: {what})")
        if run_id is not None:
            lines.append(f"    {decision_commands(run_id, name, mode)}")
    if run_id is not None:
        lines.append(
            f"Then continue: agentops resume {run_id} (or agentops resume {run_id} --wait to "
            "wait here for the decisions)"
        )
    else:
        lines.append("The run was not recorded (no history), so it cannot be continued.")
    return lines


def show_approvals(reader: HistoryReader, *, json_output: bool, console: Console) -> None:
    pending = reader.open_approvals()
    if json_output:
        print_json([record.to_json() for record in pending])
        return
    if not pending:
        console.print(Text("Nothing waits for approval."))
        return
    for record in pending:
        console.print(Text.assemble(*_heading(record)))
        shown = record.prompt if record.mode == "before" else record.output
        label = "prompt" if record.mode == "before" else "answer"
        console.print(Text(f"  {label}: ") + preview(shown, 300))
        console.print(
            Text("  ") + clean(decision_commands(record.workflow_run_id, record.agent, record.mode))
        )


def _heading(record: ApprovalRecord) -> list[str | Text]:
    expired = " · timed out: on_timeout " + (record.on_timeout or "reject") + " applies on resume"
    return [
        f"workflow run {record.workflow_run_id} · ",
        clean(one_line(record.workflow or "")),
        " · ",
        clean(record.agent),
        f" · {record.mode} · since {record.requested_at or '?'}",
        f" · until {record.timeout_at}" if record.timeout_at and not timed_out(record) else "",
        expired if timed_out(record) else "",
    ]


def has_decision(reader: HistoryReader, workflow_run_id: int) -> bool:
    """Whether a resume of the run would find something decided (or timed out) to go on with."""
    return any(
        record.applied_run_id is None and (record.status != "pending" or timed_out(record))
        for record in reader.approvals_of(workflow_run_id)
    )


def refuse_undecided(reader: HistoryReader, workflow_run_id: int) -> None:
    """``resume`` of a waiting run nobody has decided on yet would only wait again."""
    pending = [r for r in reader.approvals_of(workflow_run_id) if r.applied_run_id is None]
    if pending and not has_decision(reader, workflow_run_id):
        first = pending[0]
        raise UsageError(
            f"workflow run {workflow_run_id} waits for the approval of "
            f"{', '.join(r.agent for r in pending)} and nothing is decided yet; decide first "
            f"({decision_commands(workflow_run_id, first.agent, first.mode)}), or add --wait "
            "to wait here for the decision"
        )


def wait_for_decision(
    open_reader: Callable[[], HistoryReader], workflow_run_id: int, say: Callable[[str], None]
) -> None:
    """Return once an approval of the run is decided or times out; polls the history."""
    say(
        f"Waiting for a decision on workflow run {workflow_run_id} "
        "(Ctrl-C stops waiting; the run stays waiting)"
    )
    while True:
        reader = open_reader()
        try:
            if has_decision(reader, workflow_run_id):
                return
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
        time.sleep(POLL_SECONDS)


def history_reader(db: Path) -> Callable[[], HistoryReader]:
    """Opens the history read-only, once per look (another process writes the decision)."""

    def open_reader() -> HistoryReader:
        from agentops.store.sqlite_reader import SqliteHistoryReader

        return SqliteHistoryReader.open(db)

    return open_reader
