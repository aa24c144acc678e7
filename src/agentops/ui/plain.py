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
    ↷ fix_bug routed away: when triage.output.label == 'bug' was false (triage.output.label: 'feature')
    warning: no known price for ...

A fan-out agent (``for_each``) announces its items, and ends with one line for the
agent: ``writer fans out over 5 items`` ... ``writer succeeded in 3.1s: 5/5 ✓, 600+200
tokens, $0.0060``. Its items (``writer[2]``) print as agents do when there are at most
``ITEM_LINES_UP_TO`` of them. A larger fan-out would flood a log, so its items print a
line only when one does not succeed (``writer[812] failed after 3 attempts ...``), and
the agent prints a progress line each time another tenth of its items has settled
(``writer: 3000/10000 items settled: 2998 succeeded, 2 failed; $0.0312``); their starts,
retries and tool calls print nothing (the history and the traces have them all).
Items a resume reuses are counted in one line per agent, not one each.

then the summary (see ``summary``), ending with the run line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

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
    FanOutStarted,
    IterationStarted,
    LoopFinished,
    SkipCause,
    ToolCallFinished,
    WorkflowStarted,
    split_instance_key,
)
from agentops.ui.format import (
    ROUTED_MARK,
    format_cap,
    format_cost,
    format_duration,
    format_tokens,
    items_label,
    plural,
    shown_status,
)
from agentops.ui.reporter import Reporter
from agentops.ui.sanitize import one_line
from agentops.ui.state import describe_call

ITEM_LINES_UP_TO = 20  # items; a larger fan-out prints its failures and progress lines instead
PROGRESS_STEPS = 10  # progress lines per large fan-out: one each tenth of its items


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
    if isinstance(event, FanOutStarted):
        return [f"{one_line(event.name)} fans out over {plural(event.item_count, 'item')}"]
    if isinstance(event, IterationStarted):
        return [
            f"loop {one_line(event.loop)}: iteration {event.iteration} of at most "
            f"{event.max_iterations}"
        ]
    if isinstance(event, LoopFinished):
        verdict = "ended" if event.ok else "failed"
        return [
            f"loop {one_line(event.loop)} {verdict} after "
            f"{plural(event.iterations, 'iteration')}: {one_line(event.reason)}"
        ]
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
    reused_items: Counter[tuple[str, str]] = Counter()
    for name, previous in event.reused.items():
        if previous.agent is not None:  # a fan-out's item, a loop's iteration: counted
            kind = "item" if previous.item_index is not None else "iteration"
            reused_items[(previous.agent, kind)] += 1
        else:
            lines.append(f"{one_line(name)} succeeded (reused)")
    lines.extend(
        f"{one_line(agent)}: {plural(count, kind)} succeeded (reused)"
        for (agent, kind), count in reused_items.items()
    )
    return lines


def _finished_line(event: AgentFinished) -> str:
    result = event.result
    name = one_line(result.name)
    reason = f": {one_line(result.error)}" if result.error else ""
    if result.instances is not None:  # a fan-out: its items by status, their figures summed
        items = items_label(result)
        figures = f"{format_tokens(result.usage)} tokens, {format_cost(result.cost)}"
        return f"{name} {result.status} in {format_duration(result.duration)}: {items}, {figures}{reason}"
    if result.status is AgentStatus.WAITING_APPROVAL and result.awaiting is not None:
        what = "its prompt" if result.awaiting.mode == "before" else "its answer"
        return f"{name} waits for approval ({result.awaiting.mode}: {what})"
    if result.iterations is not None:  # a loop's member: its iterations' figures summed
        figures = f"{format_tokens(result.usage)} tokens, {format_cost(result.cost)}"
        ran = plural(len(result.iterations), "iteration")
        return f"{name} {result.status} after {ran}: {figures}{reason}"
    if result.status is AgentStatus.SUCCEEDED:
        cached = " (cached)" if result.cached else ""
        return (
            f"{name} succeeded{cached} in {format_duration(result.duration)}: "
            f"{format_tokens(result.usage)} tokens, {format_cost(result.cost)}"
        )
    if result.status is AgentStatus.FAILED:
        attempts = plural(len(result.attempts), "attempt")
        return f"{name} failed after {attempts} in {format_duration(result.duration)}{reason}"
    if result.skip_cause is SkipCause.ROUTED:
        return f"{ROUTED_MARK} {name} routed away{reason}"
    return f"{name} {result.status}{reason}"


_ITEM_EVENTS = (
    AgentStarted,
    AttemptStarted,
    AttemptFailed,
    AnswerRejected,
    ToolCallFinished,
    AgentFinished,
)  # the events that print a line for an agent


@dataclass
class _Items:
    """A large fan-out's items as the plain lines count them."""

    count: int
    settled: Counter[str] = field(default_factory=Counter)
    usage_cost: float | None = 0.0
    steps_shown: int = 0


class PlainLines:
    """``plain_lines`` for a whole run: the same lines, except that the items of a fan-out
    of more than ``ITEM_LINES_UP_TO`` are throttled (see the module's docstring)."""

    def __init__(self) -> None:
        self._large: dict[str, _Items] = {}  # fan-out agent -> its items, when throttled
        self._reused: Counter[str] = Counter()  # fan-out agent -> items a resume reused

    def __call__(self, event: Event) -> list[str]:
        if isinstance(event, WorkflowStarted):
            self._reused = Counter(r.agent for r in event.reused.values() if r.agent is not None)
        elif isinstance(event, FanOutStarted) and event.item_count > ITEM_LINES_UP_TO:
            self._large[event.name] = _Items(event.item_count)
            self._large[event.name].settled["succeeded"] += self._reused[event.name]
        elif self._large and isinstance(event, _ITEM_EVENTS):
            name = event.result.name if isinstance(event, AgentFinished) else event.name
            agent, index = split_instance_key(name)
            items = self._large.get(agent) if index is not None else None
            if items is not None:
                return self._item_lines(agent, items, event)
        return plain_lines(event)

    def _item_lines(self, agent: str, items: _Items, event: Event) -> list[str]:
        if not isinstance(event, AgentFinished):
            return []  # starts, retries, re-asks and tool calls of an item: in the history
        result = event.result
        items.settled[shown_status(result.status, result.skip_cause)] += 1
        items.usage_cost = (
            None
            if items.usage_cost is None or result.cost is None
            else items.usage_cost + result.cost
        )
        lines = [] if result.status is AgentStatus.SUCCEEDED else [_finished_line(event)]
        done = sum(items.settled.values())
        step = done * PROGRESS_STEPS // items.count
        if step > items.steps_shown and done < items.count:  # the agent's own line ends it
            items.steps_shown = step
            counts = ", ".join(f"{n} {status}" for status, n in items.settled.most_common())
            lines.append(
                f"{one_line(agent)}: {done}/{items.count} items settled: {counts}; "
                f"{format_cost(items.usage_cost)}"
            )
        return lines


class PlainReporter(Reporter):
    """Prints ``plain_lines`` for each event, then the unstyled summary."""

    styled = False
    wants_tokens = False  # streamed text is not printed: calls need not stream

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.lines = PlainLines()

    def show(self, event: Event) -> None:
        for line in self.lines(event):
            # soft_wrap: one event stays one line in a log, however narrow the console.
            self.console.print(Text(line), soft_wrap=True, highlight=False)
