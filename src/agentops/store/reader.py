"""The read side of the history as an interface: what the web view (and, later, any
other reader) may ask a store, answered with the typed records of ``records``.

``SqliteHistoryReader`` (``store.sqlite_reader``) implements it over a SQLite
file; a PostgreSQL store implements the same Protocol. Every method is a
bounded query: pages are keyset-paged, a run's agents are read by its id.
"""

from __future__ import annotations

from typing import Protocol

from agentops.store.records import (
    AgentOutcome,
    AgentRunRecord,
    AgentStart,
    RunPage,
    ToolCallRow,
    WorkflowRunHeader,
    WorkflowRunRecord,
)

__all__ = ["HistoryReader"]


class HistoryReader(Protocol):
    """Read-only queries over recorded runs. ``RunNotFoundError`` for an unknown run id."""

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

    def workflow_names(self, limit: int = 500) -> list[str]:
        """Names of recorded workflows, in order (at most ``limit``)."""
        ...

    def workflow_run_header(self, workflow_run_id: int) -> WorkflowRunHeader: ...

    def workflow_run_record(self, workflow_run_id: int) -> WorkflowRunRecord: ...

    def agent_outcomes(self, workflow_run_id: int) -> list[AgentOutcome]:
        """Every settled agent of a run, in the order they were recorded."""
        ...

    def agent_starts(self, workflow_run_id: int) -> list[AgentStart]:
        """Agents of a run that started and have no outcome recorded, by name."""
        ...

    def agent_run_in(self, workflow_run_id: int, agent: str) -> AgentRunRecord | None:
        """An agent's outcome in a run, with its prompt and attempts (None: not settled)."""
        ...

    def agent_start(self, workflow_run_id: int, agent: str) -> AgentStart | None:
        """An agent's start, with the prompt as sent (None: never started, or settled)."""
        ...

    def resume_chain(self, workflow_run_id: int) -> list[WorkflowRunRecord]:
        """The runs this one continues and those that continue it, oldest first, itself included."""
        ...

    def tool_calls(self, agent_run_id: int) -> list[ToolCallRow]:
        """An agent run's tool calls in order (none where the store has no tool calls)."""
        ...

    def close(self) -> None: ...
