"""Plain-line output for pipes, CI logs and dumb terminals: one line per event,
no escape codes, no cursor movement.

Lines (``TokensStreamed``, ``AttemptSucceeded`` and the first ``AttemptStarted``
of an agent print nothing; the agent's "started" and "succeeded" lines say it)::

    workflow demo started: 3 agents, cost cap $1.00
    researcher succeeded (reused)
    researcher started (gpt-4o via openai)
    researcher attempt 1 failed: ServerError: ...; retrying in 1.2s
    researcher attempt 2 started
    researcher called kb.lookup {key: alpha}: ok in 0.1s
    researcher succeeded in 2.3s: 120+45 tokens, $0.0012
    summarizer failed after 3 attempts in 4.0s: ServerError: ...
    summarizer skipped: researcher failed
    warning: no known price for ...

then the summary (see ``summary``), ending with the run line.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from agentops.runtime.events import (
    AgentFinished,
    AgentStarted,
    AgentStatus,
    AnswerRejected,
    AttemptFailed,
    AttemptStarted,
    CostWarning,
    Event,
    ToolCallFinished,
    WorkflowStarted,
)
from agentops.ui.format import format_cap, format_cost, format_duration, format_tokens, plural
from agentops.ui.reporter import Reporter
from agentops.ui.sanitize import one_line
from agentops.ui.state import describe_call


def plain_lines(event: Event) -> list[str]:
    """The lines an event prints (often one, none for streamed tokens)."""
    if isinstance(event, WorkflowStarted):
        return _started_lines(event)
    if isinstance(event, AgentStarted):
        return [
            f"{one_line(event.name)} started ({one_line(event.model)} via {one_line(event.provider)})"
        ]
    if isinstance(event, AttemptStarted):
        return (
            [f"{one_line(event.name)} attempt {event.number} started"] if event.number > 1 else []
        )
    if isinstance(event, AttemptFailed):
        line = f"{one_line(event.name)} attempt {event.attempt.number} failed: {one_line(event.attempt.error or 'unknown error')}"
        if event.will_retry:
            line += f"; retrying in {event.retry_in or 0:.1f}s"
        return [line]
    if isinstance(event, AnswerRejected):
        line = (
            f"{one_line(event.name)} attempt {event.attempt.number}: the answer does not follow the output schema: "
            f"{one_line(event.attempt.validation_error or '')}"
        )
        return [line + ("; re-asking" if event.will_reask else "")]
    if isinstance(event, AgentFinished):
        return [_finished_line(event)]
    if isinstance(event, CostWarning):
        return [f"warning: {one_line(event.message)}"]
    if isinstance(event, ToolCallFinished):
        call = event.call
        outcome = (
            f"ok in {format_duration(call.duration)}"
            if call.status == "succeeded"
            else (f"{call.status}: {call.error or ''}")
        )
        return [
            f"{one_line(event.name)} called {one_line(describe_call(call.tool, call.arguments))}: {one_line(outcome)}"
        ]
    return []  # TokensStreamed, AttemptSucceeded; WorkflowFinished prints the summary


def _started_lines(event: WorkflowStarted) -> list[str]:
    workflow = event.workflow
    cap = event.cost_cap if event.cost_cap is not None else workflow.policies.cost_cap
    resumed = (
        f" (resuming workflow run {event.resumed_from})" if event.resumed_from is not None else ""
    )
    cap_text = "no cost cap" if cap is None else f"cost cap {format_cap(cap)}"
    lines = [
        f"workflow {one_line(workflow.name)} started{resumed}: {plural(len(workflow.agents), 'agent')}, {cap_text}"
    ]
    lines.extend(f"{one_line(name)} succeeded (reused)" for name in event.reused)
    return lines


def _finished_line(event: AgentFinished) -> str:
    result = event.result
    name = one_line(result.name)
    if result.status is AgentStatus.SUCCEEDED:
        return (
            f"{name} succeeded in {format_duration(result.duration)}: "
            f"{format_tokens(result.usage)} tokens, {format_cost(result.cost)}"
        )
    reason = f": {one_line(result.error)}" if result.error else ""
    if result.status is AgentStatus.FAILED:
        attempts = plural(len(result.attempts), "attempt")
        return f"{name} failed after {attempts} in {format_duration(result.duration)}{reason}"
    return f"{name} {result.status}{reason}"


class PlainReporter(Reporter):
    """Prints ``plain_lines`` for each event, then the unstyled summary."""

    styled = False
    wants_tokens = False  # streamed text is not printed: calls need not stream

    def __init__(self, console: Console) -> None:
        super().__init__(console)

    def show(self, event: Event) -> None:
        for line in plain_lines(event):
            # soft_wrap: one event stays one line in a log, however narrow the console.
            self.console.print(Text(line), soft_wrap=True, highlight=False)
