"""The write side of the history as an interface: the few operations a workflow run and
a batch make, beside the read side (``store.reader``).

``SqliteHistoryWriter`` (``store.sqlite_writer``) implements it over a SQLite file; a
PostgreSQL store implements the same Protocol and is handed to ``RunRecorder`` (which
turns engine events into these calls) and to the batch runner. Every method is one
short transaction and raises ``StoreError`` (one line) when the history cannot take it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agentops.runtime.events import (
    AgentResult,
    AgentStarted,
    FanOutStarted,
    ToolCallRecord,
    ToolServerStopped,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store.records import ApprovalRecord, CacheEntry

__all__ = ["AgentChanges", "HistoryWriter", "every_agent_run", "is_fan_out"]


def is_fan_out(result: AgentResult) -> bool:
    """A fan-out agent's own result, or a loop member's: its spend is on its instances (its
    items, its iterations), never on it."""
    return (
        result.instances is not None
        or result.item_count is not None
        or result.iterations is not None
    )


def every_agent_run(results: Iterable[AgentResult]) -> list[AgentResult]:
    """Each result with its instances before it (a fan-out's items, a loop member's
    iterations and their items), each name once: the rows a run's results make, whether or
    not the instances are also listed under their own keys."""
    found: dict[str, AgentResult] = {}

    def add(result: AgentResult) -> None:
        for instance in [*(result.iterations or ()), *(result.instances or ())]:
            add(instance)
        found.setdefault(result.name, result)

    for result in results:
        add(result)
    return list(found.values())


@dataclass(frozen=True)
class AgentChanges:
    """What a workflow run's agents did in one turn of the event loop, written in one commit.

    ``started``: agents that started and have not settled (their start rows; a fan-out
    agent's from its ``FanOutStarted``, an instance's under its key ``writer[2]``);
    ``tool_calls``: (agent, call) finished, written before the settled agents so that a
    settling agent's calls are linked to its agent run; ``settled``: agents that settled;
    ``linked``: of those, the ones with tool calls not yet linked; ``ended``: of those, the
    ones whose start row is on disk (replaced by the outcome).
    """

    started: Sequence[AgentStarted | FanOutStarted] = ()
    tool_calls: Sequence[tuple[str, ToolCallRecord]] = ()
    settled: Sequence[AgentResult] = ()
    linked: Collection[str] = field(default_factory=frozenset)
    ended: Collection[str] = field(default_factory=frozenset)


class HistoryWriter(Protocol):
    """Writes workflow runs and batches. Every method is one transaction."""

    def check_recordable(self, workflow: str) -> None:
        """Make the writes that recording a run of ``workflow`` makes, then undo them: a
        history that cannot take them raises ``StoreError`` here, before the run calls anything."""
        ...

    def start_workflow_run(self, start: WorkflowStarted) -> int:
        """Record a workflow run as running, with the agents it reuses; returns its id."""
        ...

    def record_agents(self, workflow_run_id: int, workflow: str, changes: AgentChanges) -> None:
        """Agent starts, tool calls and settlements of one loop turn, with the run's totals.

        A fan-out instance is an agent run of its agent (``result.agent``) with its item; the
        fan-out agent's own run holds its item count and no spend (its instances hold it)."""
        ...

    def heartbeat(self, workflow_run_id: int) -> None:
        """The run's process is alive (``liveness``): where its pid cannot be checked, a run
        without a heartbeat for a while reads interrupted."""
        ...

    def record_tool_server(self, workflow_run_id: int, stopped: ToolServerStopped) -> None:
        """An MCP server of the run that stopped, with its stderr."""
        ...

    def finish_workflow_run(
        self,
        workflow_run_id: int,
        workflow: str,
        result: WorkflowResult,
        *,
        missing: Sequence[AgentResult] = (),
        linked: Collection[str] = (),
    ) -> None:
        """The run's end: ``missing`` agents not recorded yet (``linked``: those with tool
        calls), every start row gone, the final status and totals (of ``result``'s agents and
        their instances, each counted once: see ``every_agent_run``)."""
        ...

    def decide_approval(
        self, workflow_run_id: int, agent: str, verdict: str, *, by: str, text: str | None
    ) -> ApprovalRecord:
        """Record a person's decision (approved, rejected, revise) on the pending approval of
        ``agent`` in the run; ``UsageError`` when it is stale or already decided."""
        ...

    def create_batch(
        self,
        *,
        workflow: str,
        definition: str,
        source_path: str | None,
        data_path: str,
        data_sha256: str,
        row_count: int,
        input_map: Mapping[str, str],
        cost_cap: float | None,
        started_at: float,
    ) -> int:
        """Record a batch as running in this process; returns its id. Its rows are
        workflow runs started with its ``batch_id`` and their ``batch_row``."""
        ...

    def take_over_batch(self, batch_id: int, *, cost_cap: float | None) -> None:
        """A resumed batch is this process's now (liveness checks look at it), under ``cost_cap``."""
        ...

    def finish_batch(
        self, batch_id: int, *, status: str, finished_at: float, pauses: int, paused: float
    ) -> None:
        """Store the batch's final status and the totals, counted from its rows' runs."""
        ...

    # --- the response cache ------------------------------------------------------------

    def put_cache_entry(self, entry: CacheEntry) -> None:
        """Store an answer under its key, replacing any older one (an expired entry, say)."""
        ...

    def clear_cache(self, *, workflow: str | None = None, before: float | None = None) -> int:
        """Delete entries (of ``workflow``; written before unix time ``before``); how many."""
        ...
