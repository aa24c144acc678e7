"""What ``resume`` needs from a recorded run: its definition, inputs, the agents
that succeeded (with their outputs, to feed their dependents again), the fan-out
instances that succeeded (so only the rest run again), the iterations of a loop that
succeeded (so a loop goes on from the one in progress), the ``when`` decisions made
(never evaluated again) and what the chain of runs it continues has spent, which
counts against the cost cap."""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from agentops.errors import RunNotFoundError, StoreError, UsageError
from agentops.runtime.events import (
    AgentResult,
    AgentStatus,
    Approval,
    Attempt,
    Decision,
    RunStatus,
    Usage,
)
from agentops.store.approvals import approvals_of, timed_out
from agentops.store.database import Database
from agentops.store.liveness import RUNNING, hostname
from agentops.store.queries import AgentRunRecord, agent_run, workflow_run
from agentops.store.timestamps import from_iso


@dataclass
class ResumeState:
    workflow_run_id: int
    workflow: str
    source: str
    source_path: str | None
    inputs: dict[str, Any]
    status: str  # effective: "interrupted" when the recording process died
    # reused=True, with the usage, cost and attempts of their run; a fan-out's succeeded
    # instances under their keys (``writer[2]``), and the fan-out agent itself only when every
    # one of its items succeeded (with them as its ``instances``); a loop's iterations that
    # succeeded under theirs (``draft#2``), and its member only when it succeeded (with them
    # as its ``iterations``)
    succeeded: dict[str, AgentResult]
    cost_spent: float  # actual cost recorded by this run and every run it resumed
    cost_cap: float | None  # the cap the run had (a --cost-cap override included)
    definition_sha256: str | None = None  # of ``source``: a rerun checks the file against it
    trace_id: str | None = None  # its OpenTelemetry trace and workflow span, when it was traced
    trace_span_id: str | None = None
    # Every ``when`` decision the run recorded, routed-away agents' included, by name: a
    # resume reuses them (``RunOptions.decisions``) rather than evaluate them again.
    decisions: dict[str, Decision] = field(default_factory=dict)
    # The run's approvals no resume has taken yet, by agent: decided (or timed out: their
    # on_timeout), or still pending; an ``after`` one with the answer that waited.
    approvals: dict[str, Approval] = field(default_factory=dict)


def load_resume_state(store: Database, workflow_run_id: int, *, rerun: bool = False) -> ResumeState:
    """``rerun``: for ``agentops rerun``, which takes a run that succeeded too."""
    detail = workflow_run(store, workflow_run_id)  # raises RunNotFoundError
    run = detail.run
    if detail.definition is None:
        raise StoreError(
            f"workflow run {workflow_run_id} was recorded without its workflow definition "
            "(by an older version of agentops), so it cannot be resumed; run the workflow again"
        )
    if run.status == RUNNING and (run.hostname == hostname() or _beats(store, workflow_run_id)):
        where = "" if run.hostname == hostname() else f" on {run.hostname}"
        raise StoreError(
            f"workflow run {workflow_run_id} is still running (pid {run.pid}{where}); "
            "wait for it to finish or stop it before resuming"
        )
    if run.status == RunStatus.SUCCEEDED.value and not rerun:
        raise UsageError(
            f"workflow run {workflow_run_id} already succeeded: nothing to resume; "
            f"to run it again use agentops run {run.source_path or 'FILE'}"
        )
    succeeded: dict[str, AgentResult] = {}
    for agent in detail.agents:
        _collect(store, agent, succeeded)
    decisions = {
        record.name: record.decision
        for record in detail.every_agent_run()
        if record.decision is not None and record.agent
    }
    return ResumeState(
        workflow_run_id=workflow_run_id,
        workflow=run.workflow or "",
        source=detail.definition,
        source_path=run.source_path,
        definition_sha256=detail.definition_sha256,
        inputs=detail.inputs,
        status=run.status,
        succeeded=succeeded,
        cost_spent=chain_spend(store, workflow_run_id),
        cost_cap=run.cost_cap,
        trace_id=detail.trace_id,
        trace_span_id=detail.trace_span_id,
        decisions=decisions,
        approvals=_approvals(store, workflow_run_id, detail.agents),
    )


def _beats(store: Database, workflow_run_id: int) -> bool:
    """Whether the run (on another host) writes heartbeats: its ``running`` is then live."""
    found = store.read("SELECT heartbeat_at FROM workflow_runs WHERE id = ?", (workflow_run_id,))
    return bool(found) and found[0][0] is not None


def _approvals(
    store: Database, workflow_run_id: int, agents: list[AgentRunRecord]
) -> dict[str, Approval]:
    waiting = {a.agent: a for a in agents if a.status == AgentStatus.WAITING_APPROVAL.value}
    found: dict[str, Approval] = {}
    now = time.time()
    for record in approvals_of(store, workflow_run_id):
        if record.applied_run_id is not None:
            continue
        row = waiting.get(record.agent)
        answer = _reused_result(store, row) if row is not None and record.mode == "after" else None
        verdict = None if record.status == "pending" else record.status
        by, at, text = record.decided_by, from_iso(record.decided_at), record.text
        expired = timed_out(record, now)
        if expired:
            verdict = "approved" if record.on_timeout == "approve" else "rejected"
            by, at, text = "timeout", now, f"no decision by {record.timeout_at}"
        found[record.agent] = Approval(
            record.mode, verdict, by, at, text, answer, record.id, timed_out=expired
        )
    return found


def _collect(store: Database, record: AgentRunRecord, succeeded: dict[str, AgentResult]) -> None:
    """Add the run (and its items and iterations) to ``succeeded`` if it can be reused."""
    for run in [*(record.iteration_runs or ()), *(record.instances or ())]:
        _collect(store, run, succeeded)
    if not _succeeded(record):
        return
    result = _reused_result(store, record)
    if record.instances is not None:
        instances = [succeeded[i.name] for i in record.instances if i.name in succeeded]
        if len(instances) != (record.item_count or 0):
            return  # an item failed (on_item_error: continue): the agent runs again for it
        result.instances = instances
    if record.iteration_runs is not None:
        iterations = [succeeded.get(i.name) for i in record.iteration_runs]
        if None in iterations or len(iterations) != (record.iterations or 0):
            return  # its loop goes on from the iterations that did succeed
        result.iterations = [i for i in iterations if i is not None]
    succeeded[record.name] = result


def _succeeded(record: AgentRunRecord) -> bool:
    return record.status == AgentStatus.SUCCEEDED.value and bool(record.agent)


def _reused_result(store: Database, record: AgentRunRecord) -> AgentResult:
    """The result as first produced: a reused row points at the run that made it."""
    origin = record
    if record.reused_from_run_id is not None:
        # If the original row is gone, what this row says is all there is.
        with suppress(RunNotFoundError):
            origin = agent_run(store, record.reused_from_run_id)
    instance = record.item_index is not None or record.iteration is not None
    return AgentResult(
        name=record.name,
        status=AgentStatus.SUCCEEDED,
        model=origin.model or "",
        provider=origin.provider or "",
        output=record.output,
        value=origin.parsed_value if record.value is None else record.parsed_value,
        prompt=origin.prompt,
        usage=Usage(origin.input_tokens, origin.output_tokens, origin.tokens_estimated),
        cost=origin.cost,
        attempts=[
            Attempt(
                number=a.number,
                status=a.status,
                started_at=from_iso(a.started_at) or 0.0,
                duration=a.duration or 0.0,
                usage=Usage(a.input_tokens, a.output_tokens, a.tokens_estimated),
                cost=a.cost,
                error=a.error,
                error_type=a.error_type,
                http_status=a.http_status,
                turn=a.turn,
                validation_error=a.validation_error,
            )
            for a in origin.attempts
        ],
        started_at=from_iso(origin.started_at),
        finished_at=from_iso(origin.finished_at),
        reused=True,
        decision=record.decision,
        agent=record.agent if instance else None,
        item_index=record.item_index,
        item=record.parsed_item,
        item_count=record.item_count,
        loop=record.loop,
        iteration=record.iteration if instance else record.iterations,
        loop_end=record.loop_end,
    )


def chain_spend(store: Database, workflow_run_id: int) -> float:
    """Actual cost of agent runs in this run and every run it resumed, transitively (a
    rerun is a new run: the chain stops there, what it reused was paid for by its origin)."""
    rows = store.read(
        """WITH RECURSIVE chain(id) AS (
            SELECT CAST(? AS BIGINT)
            UNION
            SELECT w.resumed_from FROM workflow_runs w JOIN chain ON w.id = chain.id
            WHERE w.resumed_from IS NOT NULL AND w.rerun_from IS NULL
        )
        SELECT coalesce(sum(r.cost), 0) FROM runs r WHERE r.workflow_run_id IN (SELECT id FROM chain)""",
        (workflow_run_id,),
    )
    value = rows[0][0] if rows else 0.0
    return float(value) if isinstance(value, int | float) else 0.0
