"""The live view's model of a run: one ``AgentRow`` per agent, updated from
engine events, plus run-wide spend. Updating is cheap (no rendering), because
the engine calls subscribers on its event loop."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from agentops.runtime.events import (
    AgentFinished,
    AgentStarted,
    AgentStatus,
    AnswerRejected,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    Event,
    TokensStreamed,
    ToolCallFinished,
    ToolCallStarted,
    ToolServerStopped,
    Usage,
    WorkflowFinished,
    WorkflowStarted,
)

RETRYING = "retrying"
PREVIEW_BUFFER = 512  # raw characters kept per agent; the preview shows far fewer


@dataclass
class AgentRow:
    name: str
    index: int  # position in the workflow file
    status: str = AgentStatus.WAITING  # an AgentStatus value, or RETRYING
    model: str = ""
    provider: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    retries: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0
    streamed: str = ""  # the tail of the current attempt's text, unsanitized
    streamed_chars: int = 0
    error: str | None = None
    reused: bool = False
    finished_order: int = 0  # 1 for the first agent to settle, 2 for the next...
    calls_in_progress: dict[str, str] = field(
        default_factory=dict
    )  # call id -> "kb.lookup {key: alpha}"
    tool_calls: int = 0  # finished

    @property
    def active(self) -> bool:
        return self.status in (AgentStatus.RUNNING, RETRYING)

    @property
    def settled(self) -> bool:
        return not self.active and self.status != AgentStatus.WAITING

    @property
    def label(self) -> str:
        if self.reused:
            return "succeeded (reused)"
        if self.status == RETRYING:
            return f"retrying ({self.retries})"
        return str(self.status)

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at if self.finished_at is not None else now) - self.started_at


@dataclass
class RunState:
    workflow: str = ""
    rows: dict[str, AgentRow] = field(default_factory=dict)
    started_at: float | None = None
    cost_cap: float | None = None
    spent_before: float = 0.0
    finished: bool = False
    warnings: list[str] = field(default_factory=list)
    _settled: int = 0

    def apply(self, event: Event) -> None:
        """Fold one engine event into the state."""
        if isinstance(event, WorkflowStarted):
            self._start(event)
        elif isinstance(event, WorkflowFinished):
            self.finished = True
        elif isinstance(event, CostWarning):
            self.warnings.append(event.message)
        elif isinstance(event, ToolServerStopped):
            pass  # a server's stderr goes to the history only, never to the live view
        else:
            row = self.rows.get(
                event.name if not isinstance(event, AgentFinished) else event.result.name
            )
            if row is not None:
                self._apply_to_row(row, event)

    def _start(self, event: WorkflowStarted) -> None:
        workflow = event.workflow
        self.workflow = workflow.name
        self.started_at = event.started_at
        self.cost_cap = event.cost_cap if event.cost_cap is not None else workflow.policies.cost_cap
        self.spent_before = event.spent_before
        self.rows = {
            agent.name: AgentRow(agent.name, index) for index, agent in enumerate(workflow.agents)
        }
        for name, previous in event.reused.items():
            row = self.rows.get(name)
            if row is not None:
                row.status, row.reused = AgentStatus.SUCCEEDED, True
                row.usage, row.cost = previous.usage, previous.cost
                row.model, row.provider = previous.model, previous.provider
                row.started_at, row.finished_at = previous.started_at, previous.finished_at
                row.streamed = (previous.output or "")[-PREVIEW_BUFFER:]

    def _apply_to_row(self, row: AgentRow, event: Event) -> None:
        if isinstance(event, AgentStarted):
            row.status, row.model, row.provider = AgentStatus.RUNNING, event.model, event.provider
            row.started_at = event.started_at
        elif isinstance(event, AttemptStarted):
            if event.number > 1:  # a retry streams its answer afresh
                row.streamed, row.streamed_chars = "", 0
        elif isinstance(event, TokensStreamed):
            row.streamed = (row.streamed + event.text)[-PREVIEW_BUFFER:]
            row.streamed_chars += len(event.text)
        elif isinstance(event, (AttemptSucceeded, AttemptFailed)):
            attempt = event.attempt
            row.usage = row.usage + attempt.usage
            row.cost = None if row.cost is None or attempt.cost is None else row.cost + attempt.cost
            row.streamed_chars = 0  # the attempt's usage now counts what it streamed
            if isinstance(event, AttemptFailed):
                row.error = attempt.error
                if event.will_retry:  # until the retry streams, the preview shows why
                    row.status, row.retries, row.streamed = RETRYING, attempt.number, ""
        elif isinstance(event, AnswerRejected) and event.will_reask:
            # The answer did not follow the schema: the preview says why until the re-ask streams.
            row.status, row.retries, row.streamed = RETRYING, event.attempt.number, ""
            row.error = f"invalid answer, re-asking: {event.attempt.validation_error}"
        elif isinstance(event, ToolCallStarted):
            row.calls_in_progress[event.call_id] = describe_call(event.tool, event.arguments)
        elif isinstance(event, ToolCallFinished):
            row.calls_in_progress.pop(event.call.call_id, None)
            row.tool_calls += 1
        elif isinstance(event, AgentFinished):
            result = event.result
            row.calls_in_progress.clear()
            row.status, row.error = result.status, result.error
            row.usage, row.cost = result.usage, result.cost  # the engine's totals are authoritative
            if result.started_at is not None:
                row.started_at = result.started_at
            row.finished_at = result.finished_at
            if result.output:
                row.streamed = result.output[-PREVIEW_BUFFER:]
            self._settled += 1
            row.finished_order = self._settled

    # --- derived figures ----------------------------------------------------------

    @property
    def spent(self) -> float:
        """Spent by this run (``spent_before`` is shown apart)."""
        return sum(r.cost or 0.0 for r in self.rows.values() if not r.reused)

    @property
    def cost_unknown(self) -> bool:
        return any(r.cost is None for r in self.rows.values() if not r.reused)

    @property
    def done(self) -> int:
        return sum(r.settled for r in self.rows.values())

    def counts(self) -> Counter[str]:
        """How many agents are in each status ("retrying" counted apart from "running")."""
        return Counter(
            RETRYING if r.status == RETRYING else str(r.status) for r in self.rows.values()
        )


def describe_call(tool: str, arguments: str, limit: int = 120) -> str:
    """ "kb.lookup {key: alpha}": a call as the live view and the plain lines show it (unsanitized)."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):  # a model's arguments: anything, nested past the stack too
        value = None
    if isinstance(value, dict):
        shown = ", ".join(f"{key}: {_compact(item)}" for key, item in value.items())
        text = f"{tool} {{{shown}}}"
    else:
        text = f"{tool} {arguments}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
