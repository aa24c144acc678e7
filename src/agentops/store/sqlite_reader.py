"""``HistoryReader`` over a SQLite history file, opened read-only."""

from __future__ import annotations

from pathlib import Path

from agentops.store import browse
from agentops.store.opening import open_reader
from agentops.store.reader import HistoryReader
from agentops.store.records import (
    AgentOutcome,
    AgentRunRecord,
    AgentStart,
    RunPage,
    ToolCallRow,
    WorkflowRunHeader,
    WorkflowRunRecord,
)
from agentops.store.sqlite import Store

__all__ = ["SqliteHistoryReader"]


class SqliteHistoryReader:
    """One read-only connection; one thread at a time (the web view opens one per thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def open(cls, path: str | Path) -> SqliteHistoryReader:
        return cls(open_reader(path))

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

    def workflow_names(self, limit: int = 500) -> list[str]:
        return browse.workflow_names(self.store, limit)

    def workflow_run_header(self, workflow_run_id: int) -> WorkflowRunHeader:
        return browse.workflow_run_header(self.store, workflow_run_id)

    def workflow_run_record(self, workflow_run_id: int) -> WorkflowRunRecord:
        return browse.workflow_run_summary(self.store, workflow_run_id)

    def agent_outcomes(self, workflow_run_id: int) -> list[AgentOutcome]:
        return browse.agent_outcomes(self.store, workflow_run_id)

    def agent_starts(self, workflow_run_id: int) -> list[AgentStart]:
        return browse.agent_starts(self.store, workflow_run_id)

    def agent_run_in(self, workflow_run_id: int, agent: str) -> AgentRunRecord | None:
        return browse.agent_run_in(self.store, workflow_run_id, agent)

    def agent_start(self, workflow_run_id: int, agent: str) -> AgentStart | None:
        return browse.agent_start(self.store, workflow_run_id, agent)

    def resume_chain(self, workflow_run_id: int) -> list[WorkflowRunRecord]:
        return browse.resume_chain(self.store, workflow_run_id)

    def tool_calls(self, agent_run_id: int) -> list[ToolCallRow]:
        return browse.tool_calls(self.store, agent_run_id)

    def close(self) -> None:
        self.store.close()


def _implements_the_interface(reader: SqliteHistoryReader) -> HistoryReader:
    return reader  # mypy checks here that the class satisfies the Protocol
