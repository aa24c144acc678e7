"""The read side of the history as an interface: what the history commands, the web
view, a resume and a batch may ask a store, answered with the typed records of ``records``.

``SqliteHistoryReader`` (``store.sqlite_reader``) implements it over a SQLite
file; a PostgreSQL store implements the same Protocol and plugs in where
``cli.app`` and ``web.serve`` build the reader, and in ``assembly.open_history`` (runs,
resumes and batches). Every method is a bounded query:
listings read the newest rows first up to a limit, pages are keyset-paged, a
run's agents are read by its id, a batch's rows are streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from agentops.store.records import (
    AgentOutcome,
    AgentRunRecord,
    AgentStart,
    ApprovalRecord,
    BatchRecord,
    CacheEntry,
    CacheStat,
    CostGroup,
    CostGrouping,
    RecordedAnswer,
    RowOutcome,
    RunPage,
    ToolCallRow,
    WorkflowRunDetail,
    WorkflowRunHeader,
    WorkflowRunRecord,
)

if TYPE_CHECKING:
    from agentops.store.batches import RowState
    from agentops.store.resume import ResumeState

__all__ = ["HistoryReader"]


class HistoryReader(Protocol):
    """Read-only queries over recorded runs. ``RunNotFoundError`` for an unknown run id."""

    @property
    def location(self) -> str:
        """Where the history is, as messages name it (a file path, a database URL)."""
        ...

    # --- approvals --------------------------------------------------------------------------

    def open_approvals(self, *, limit: int = 100) -> list[ApprovalRecord]:
        """What waits for a person, across runs, oldest first (with the prompt or answer)."""
        ...

    def approvals_of(self, workflow_run_id: int) -> list[ApprovalRecord]:
        """A run's approvals, decided or not, in the order requested."""
        ...

    # --- workflow runs ----------------------------------------------------------------------

    def workflow_runs(
        self, *, workflow: str | None = None, limit: int = 20
    ) -> list[WorkflowRunRecord]:
        """The newest workflow runs, optionally of one workflow."""
        ...

    def workflow_run_page(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> RunPage:
        """Workflow runs newest first, optionally of one workflow and one (effective) status,
        with ids below ``before`` or, for the previous page, above ``after``."""
        ...

    def workflow_names(self, limit: int | None = 500) -> list[str]:
        """Names of recorded workflows, in order (at most ``limit``; None: every one)."""
        ...

    def workflow_is_recorded(self, workflow: str) -> bool: ...

    def workflow_run(self, workflow_run_id: int) -> WorkflowRunDetail:
        """A workflow run with every agent run, its prompts, attempts and tool calls; a
        fan-out's instances are under their agent's ``instances``, in item order."""
        ...

    def workflow_run_header(self, workflow_run_id: int) -> WorkflowRunHeader: ...

    def workflow_run_record(self, workflow_run_id: int) -> WorkflowRunRecord: ...

    def resume_state(self, workflow_run_id: int, *, rerun: bool = False) -> ResumeState:
        """What resuming the run needs: its definition, inputs, succeeded agents and fan-out
        instances (as reused results, an instance under ``writer[2]``), every ``when`` decision
        made, and the spend of its resume chain. ``StoreError`` if it cannot be resumed.
        ``rerun``: for a rerun from one of its agents, which a run that succeeded allows."""
        ...

    def resume_chain(self, workflow_run_id: int) -> list[WorkflowRunRecord]:
        """The runs this one continues and those that continue it, oldest first, itself included."""
        ...

    # --- agent runs ---------------------------------------------------------------------------

    def agent_runs(self, *, workflow: str | None = None, limit: int = 20) -> list[AgentRunRecord]:
        """The newest agent runs, optionally of one workflow (without prompts and attempts)."""
        ...

    def agent_run(self, agent_run_id: int) -> AgentRunRecord:
        """One agent run with its prompt, attempts and tool calls."""
        ...

    def agent_outcomes(self, workflow_run_id: int) -> list[AgentOutcome]:
        """Every settled agent of a run, light, in the order they were recorded."""
        ...

    def agent_starts(self, workflow_run_id: int) -> list[AgentStart]:
        """Agents of a run that started and have no outcome recorded, by name."""
        ...

    def agent_run_in(self, workflow_run_id: int, agent: str) -> AgentRunRecord | None:
        """An agent's outcome in a run, with its prompt and attempts (None: not settled);
        ``agent`` may name a fan-out instance (``writer[2]``)."""
        ...

    def agent_start(self, workflow_run_id: int, agent: str) -> AgentStart | None:
        """An agent's start, with the prompt as sent (None: never started, or settled)."""
        ...

    def tool_calls(self, agent_run_id: int) -> list[ToolCallRow]:
        """An agent run's tool calls in order (none where the store has no tool calls)."""
        ...

    # --- spend and batches --------------------------------------------------------------------

    def spend(
        self,
        *,
        by: CostGrouping | None = CostGrouping.workflow,
        since: str | None = None,
        until: str | None = None,
    ) -> list[CostGroup]:
        """Spend and tokens of agent runs finished in [since, until), grouped ``by`` (None:
        one "total" group, none if nothing matched); reused results left out."""
        ...

    def batches(self, *, limit: int = 20) -> list[BatchRecord]:
        """The newest batches."""
        ...

    def batch(self, batch_id: int) -> BatchRecord: ...

    def batch_progress(self, batch_id: int) -> dict[str, int]:
        """Row counts by the status of each row's latest run."""
        ...

    def batch_spend(self, batch_id: int) -> float:
        """What every workflow run of the batch has spent."""
        ...

    def batch_row_states(self, batch_id: int) -> dict[int, RowState]:
        """Each row's latest workflow run (its id and effective status), by row number."""
        ...

    def batch_row_outcomes(self, batch_id: int) -> Iterator[RowOutcome]:
        """Each row's latest run in row order, with every agent's output; streamed."""
        ...

    # --- the response cache and replays ----------------------------------------------------

    def cache_entry(self, key: str, *, not_before: float | None = None) -> CacheEntry | None:
        """The answer stored under ``key`` (None: none, or written before ``not_before``)."""
        ...

    def cache_stats(self) -> list[CacheStat]:
        """Per workflow: entries, their size, and the hits its runs had and what they saved."""
        ...

    def recorded_answers(self, workflow_run_ids: list[int]) -> list[RecordedAnswer]:
        """The succeeded attempts of these runs that recorded their request and answer, in order."""
        ...

    def batch_workflow_runs(self, batch_id: int) -> list[int]:
        """Every workflow run of a batch (its rows' runs and their resumes), oldest first."""
        ...

    def close(self) -> None: ...
