"""``HistoryReader`` over a SQLite file or a PostgreSQL database: the history commands' queries
(``queries``, ``batches``) and the web view's (``browse``) behind one object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agentops.store import approvals, browse, cache_queries, queries
from agentops.store import batches as batch_queries
from agentops.store.batches import RowState
from agentops.store.database import Database
from agentops.store.opening import open_reader
from agentops.store.reader import HistoryReader
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
from agentops.store.resume import ResumeState, load_resume_state

__all__ = ["SqliteHistoryReader"]


class SqliteHistoryReader:
    """One connection; one thread at a time (the web view opens one per thread).

    ``open`` opens a file read-only (the web view); the history commands hand in the
    store they opened, migrated (``open_store``).
    """

    def __init__(self, store: Database) -> None:
        self.store = store

    @classmethod
    def open(cls, path: str | Path) -> SqliteHistoryReader:
        return cls(open_reader(path))

    @property
    def location(self) -> str:
        return str(self.store.path)

    def open_approvals(self, *, limit: int = 100) -> list[ApprovalRecord]:
        return approvals.open_approvals(self.store, limit=limit)

    def approvals_of(self, workflow_run_id: int) -> list[ApprovalRecord]:
        return approvals.approvals_of(self.store, workflow_run_id)

    def workflow_runs(
        self, *, workflow: str | None = None, limit: int = 20
    ) -> list[WorkflowRunRecord]:
        return queries.workflow_runs(self.store, workflow=workflow, limit=limit)

    def workflow_run_page(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> RunPage:
        return browse.workflow_run_page(
            self.store, workflow=workflow, status=status, before=before, after=after, limit=limit
        )

    def workflow_names(self, limit: int | None = 500) -> list[str]:
        return browse.workflow_names(self.store, limit)

    def workflow_is_recorded(self, workflow: str) -> bool:
        return queries.workflow_is_recorded(self.store, workflow)

    def workflow_run(self, workflow_run_id: int) -> WorkflowRunDetail:
        return queries.workflow_run(self.store, workflow_run_id)

    def workflow_run_header(self, workflow_run_id: int) -> WorkflowRunHeader:
        return browse.workflow_run_header(self.store, workflow_run_id)

    def workflow_run_record(self, workflow_run_id: int) -> WorkflowRunRecord:
        return browse.workflow_run_summary(self.store, workflow_run_id)

    def resume_state(self, workflow_run_id: int, *, rerun: bool = False) -> ResumeState:
        return load_resume_state(self.store, workflow_run_id, rerun=rerun)

    def resume_chain(self, workflow_run_id: int) -> list[WorkflowRunRecord]:
        return browse.resume_chain(self.store, workflow_run_id)

    def agent_runs(self, *, workflow: str | None = None, limit: int = 20) -> list[AgentRunRecord]:
        return queries.agent_runs(self.store, workflow=workflow, limit=limit)

    def agent_run(self, agent_run_id: int) -> AgentRunRecord:
        return queries.agent_run(self.store, agent_run_id)

    def agent_outcomes(self, workflow_run_id: int) -> list[AgentOutcome]:
        return browse.agent_outcomes(self.store, workflow_run_id)

    def agent_starts(self, workflow_run_id: int) -> list[AgentStart]:
        return browse.agent_starts(self.store, workflow_run_id)

    def agent_run_in(self, workflow_run_id: int, agent: str) -> AgentRunRecord | None:
        return browse.agent_run_in(self.store, workflow_run_id, agent)

    def agent_start(self, workflow_run_id: int, agent: str) -> AgentStart | None:
        return browse.agent_start(self.store, workflow_run_id, agent)

    def tool_calls(self, agent_run_id: int) -> list[ToolCallRow]:
        return browse.tool_calls(self.store, agent_run_id)

    def spend(
        self,
        *,
        by: CostGrouping | None = CostGrouping.workflow,
        since: str | None = None,
        until: str | None = None,
    ) -> list[CostGroup]:
        return queries.spend(self.store, by=by, since=since, until=until)

    def batches(self, *, limit: int = 20) -> list[BatchRecord]:
        return batch_queries.list_batches(self.store, limit=limit)

    def batch(self, batch_id: int) -> BatchRecord:
        return batch_queries.batch(self.store, batch_id)

    def batch_progress(self, batch_id: int) -> dict[str, int]:
        return batch_queries.progress(self.store, batch_id)

    def batch_spend(self, batch_id: int) -> float:
        return batch_queries.batch_spend(self.store, batch_id)

    def batch_row_states(self, batch_id: int) -> dict[int, RowState]:
        return batch_queries.row_states(self.store, batch_id)

    def batch_row_outcomes(self, batch_id: int) -> Iterator[RowOutcome]:
        return batch_queries.row_outcomes(self.store, batch_id)

    def cache_entry(self, key: str, *, not_before: float | None = None) -> CacheEntry | None:
        return cache_queries.cache_entry(self.store, key, not_before=not_before)

    def cache_stats(self) -> list[CacheStat]:
        return cache_queries.cache_stats(self.store)

    def recorded_answers(self, workflow_run_ids: list[int]) -> list[RecordedAnswer]:
        return cache_queries.recorded_answers(self.store, workflow_run_ids)

    def batch_workflow_runs(self, batch_id: int) -> list[int]:
        return cache_queries.batch_workflow_runs(self.store, batch_id)

    def close(self) -> None:
        self.store.close()


def _implements_the_interface(reader: SqliteHistoryReader) -> HistoryReader:
    return reader  # mypy checks here that the class satisfies the Protocol
