"""The SQLite queries of approvals: what waits for a person (across runs, or one run's), and
recording a decision, refused when it is stale (the run was resumed since) or a second one."""

from __future__ import annotations

import getpass
import sqlite3
import time
from datetime import datetime

from agentops.errors import UsageError
from agentops.store.records import APPROVAL_COLUMNS, ApprovalRecord, approval_record
from agentops.store.sqlite import Store
from agentops.store.timestamps import to_iso

VERDICTS = ("approved", "rejected", "revise")
_COMMANDS = {"approved": "approve", "rejected": "reject", "revise": "revise"}


def decider(by: str | None) -> str:
    """Who decides: ``--by``, else the OS user."""
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def open_approvals(store: Store, *, limit: int = 100) -> list[ApprovalRecord]:
    """Every approval no one has decided and no resume has taken, oldest first."""
    rows = store.read(
        f"""SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN workflow_runs w
            ON w.id = a.workflow_run_id
        WHERE a.applied_run_id IS NULL AND a.status = 'pending' ORDER BY a.id LIMIT ?""",
        (limit,),
    )
    return [approval_record(row) for row in rows]


def approvals_of(store: Store, workflow_run_id: int) -> list[ApprovalRecord]:
    """A run's approvals in the order requested (decided, pending and taken alike)."""
    rows = store.read(
        f"""SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN workflow_runs w
            ON w.id = a.workflow_run_id
        WHERE a.workflow_run_id = ? ORDER BY a.id""",
        (workflow_run_id,),
    )
    return [approval_record(row) for row in rows]


def timed_out(record: ApprovalRecord, now: float | None = None) -> bool:
    if record.status != "pending" or not record.timeout_at:
        return False
    deadline = datetime.fromisoformat(record.timeout_at).timestamp()
    return (time.time() if now is None else now) >= deadline


def decide(
    store: Store, workflow_run_id: int, agent: str, verdict: str, by: str, text: str | None
) -> ApprovalRecord:
    """Record ``verdict`` on the pending approval of ``agent`` in the run; ``UsageError``
    (one line, what to do instead) when there is none, it was decided, taken by a resume, or
    timed out, or ``revise`` is asked of an approval before the agent ran."""
    assert verdict in VERDICTS

    def work(connection: sqlite3.Connection) -> ApprovalRecord:
        row = connection.execute(
            f"""SELECT {APPROVAL_COLUMNS} FROM approvals a JOIN workflow_runs w
                ON w.id = a.workflow_run_id
            WHERE a.workflow_run_id = ? AND a.agent = ? ORDER BY a.id DESC LIMIT 1""",
            (workflow_run_id, agent),
        ).fetchone()
        if row is None:
            raise UsageError(
                f"workflow run {workflow_run_id} has no approval of {agent!r}; "
                "agentops approvals lists what waits for one"
            )
        record = approval_record(row)
        where = f"the approval of {agent} in workflow run {workflow_run_id}"
        if record.applied_run_id is not None:
            if record.status == "pending":
                raise UsageError(
                    f"{where} was carried on by workflow run {record.applied_run_id}, which "
                    f"resumed it; decide there: agentops {_COMMANDS[verdict]} "
                    f"{record.applied_run_id} {agent}"
                )
            raise UsageError(
                f"{where} was already {_done(record)} and applied by workflow run "
                f"{record.applied_run_id}; nothing to decide"
            )
        if record.status != "pending":
            raise UsageError(f"{where} was already {_done(record)}; a decision is recorded once")
        if timed_out(record):
            raise UsageError(
                f"{where} timed out at {record.timeout_at} (on_timeout: {record.on_timeout}, "
                f"applied when it resumes: agentops resume {workflow_run_id})"
            )
        if verdict == "revise" and record.mode != "after":
            raise UsageError(
                f"{agent} waits before it runs (approval: before): there is no answer to send "
                f"back; approve it (agentops approve {workflow_run_id} {agent}) or reject it"
            )
        at = time.time()
        changed = connection.execute(
            """UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, text = ?
            WHERE id = ? AND status = 'pending' AND applied_run_id IS NULL""",
            (verdict, to_iso(at), by, text, record.id),
        ).rowcount
        if changed != 1:  # under the write lock this cannot happen; say so if it does
            raise UsageError(f"{where} changed while deciding; look again: agentops approvals")
        record.status, record.decided_at, record.decided_by, record.text = (
            verdict,
            to_iso(at),
            by,
            text,
        )
        return record

    return store.write(work)


def _done(record: ApprovalRecord) -> str:
    """ "approved by alice at 2026-…" """
    by = f" by {record.decided_by}" if record.decided_by else ""
    at = f" at {record.decided_at}" if record.decided_at else ""
    word = "sent back" if record.status == "revise" else record.status
    return f"{word}{by}{at}"
