"""The live view's model of a run: one ``AgentRow`` per agent, updated from
engine events, plus run-wide spend. Updating is cheap (no rendering), because
the engine calls subscribers on its event loop.

A fan-out agent (``for_each``) is one row whatever its item count: its instances
(``writer[2]``) are counted by status in its ``FanOut``, and only those under way
are kept as rows of their own (at most the run's concurrency), so a 10,000-item
fan-out costs a few counters, not 10,000 rows. Its usage and cost are its
instances' summed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    AnswerRejected,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    Event,
    FanOutStarted,
    IterationStarted,
    LoopFinished,
    SkipCause,
    TokensStreamed,
    ToolCallFinished,
    ToolCallStarted,
    ToolServerStopped,
    Usage,
    WorkflowFinished,
    WorkflowStarted,
    split_run_key,
)
from agentops.ui.format import NOT_RUN, describe_items, shown_status

RETRYING = "retrying"
PREVIEW_BUFFER = 512  # raw characters kept per agent; the preview shows far fewer
# An agent's name matches ``[A-Za-z_][\w-]*`` (spec.Agent), so a name with "[N]" at the end
# can only be an instance's: the inverse of ``events.instance_key``.


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
    cached: bool = False  # every call answered from the response cache
    finished_order: int = 0  # 1 for the first agent to settle, 2 for the next...
    calls_in_progress: dict[str, str] = field(
        default_factory=dict
    )  # call id -> "kb.lookup {key: alpha}"
    tool_calls: int = 0  # finished
    skip_cause: SkipCause | None = None
    fan_out: FanOut | None = None  # set when a fan-out agent has its items
    # A loop's member: the iteration under way (or the last), of at most ``max_iterations``.
    iteration: int | None = None
    max_iterations: int | None = None
    loop_usage: Usage = field(default_factory=Usage)  # of its iterations settled (run this time)
    loop_cost: float | None = 0.0

    @property
    def active(self) -> bool:
        return self.status in (AgentStatus.RUNNING, RETRYING)

    @property
    def settled(self) -> bool:
        return not self.active and self.status != AgentStatus.WAITING

    @property
    def shown_status(self) -> str:
        """The status as counted and styled: "retrying" and "routed away" apart."""
        return shown_status(self.status, self.skip_cause)

    @property
    def label(self) -> str:
        if self.reused:
            return "succeeded (reused)"
        if self.cached and self.status == AgentStatus.SUCCEEDED:
            return "succeeded (cached)"
        if self.status == RETRYING:
            return f"retrying ({self.retries})"
        if self.status == AgentStatus.WAITING_APPROVAL:
            return "waiting for approval"
        label = self.shown_status
        if self.fan_out is not None:
            items = self.fan_out.describe()
            label = items if self.active else f"{self.status} {items}"
        if self.iteration is not None:
            label += (
                f" · iteration {self.iteration}/{self.max_iterations}"
                if self.active
                else f" after {self.iteration} iteration{'s' if self.iteration != 1 else ''}"
            )
        return label

    def elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at if self.finished_at is not None else now) - self.started_at


@dataclass
class FanOut:
    """A fan-out agent's items: the settled ones counted by status, the ones under way as
    rows (by instance name), the rest waiting for a slot."""

    item_count: int
    settled: Counter[str] = field(default_factory=Counter)  # shown status -> instances
    active: dict[str, AgentRow] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)  # of the settled instances run this time
    cost: float | None = 0.0
    first_failure: str | None = None  # "writer[3]: ServerError: ...": what the row shows

    @property
    def waiting(self) -> int:
        return max(0, self.item_count - sum(self.settled.values()) - len(self.active))

    def counts(self) -> Counter[str]:
        """Items by status, running and retrying and waiting included."""
        counts = Counter(self.settled)
        counts.update(row.shown_status for row in self.active.values())
        counts[AgentStatus.WAITING] += self.waiting
        return +counts  # without zeros

    def describe(self) -> str:
        return describe_items(self.counts(), self.item_count)


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
    # Instances a resume reuses, by fan-out agent: counted once the agent has its items.
    _reused_items: dict[str, list[AgentResult]] = field(default_factory=dict)
    _loops: dict[str, tuple[str, ...]] = field(default_factory=dict)  # loop -> its members

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
        elif isinstance(event, FanOutStarted):
            self._start_fan_out(event)
        elif isinstance(event, IterationStarted):
            self._start_iteration(event)
        elif isinstance(event, LoopFinished):
            pass  # each member settles right after, with the loop's end as its own
        else:
            name = event.name if not isinstance(event, AgentFinished) else event.result.name
            row = self.rows.get(name)
            if row is not None:
                self._apply_to_row(row, event)
            else:
                self._apply_to_instance(name, event)

    def _start_iteration(self, event: IterationStarted) -> None:
        for name in self._loops.get(event.loop, ()):
            row = self.rows.get(name)
            if row is not None:
                row.iteration, row.max_iterations = event.iteration, event.max_iterations
                if row.status == AgentStatus.WAITING:
                    row.status, row.started_at = AgentStatus.RUNNING, event.started_at

    def _start(self, event: WorkflowStarted) -> None:
        workflow = event.workflow
        self._loops = {loop.name: tuple(loop.agents) for loop in workflow.loops}
        self.workflow = workflow.name
        self.started_at = event.started_at
        self.cost_cap = event.cost_cap if event.cost_cap is not None else workflow.policies.cost_cap
        self.spent_before = event.spent_before
        self.rows = {
            agent.name: AgentRow(agent.name, index) for index, agent in enumerate(workflow.agents)
        }
        for name, previous in event.reused.items():
            row = self.rows.get(name)
            if row is None and previous.agent is not None:
                self._reused_items.setdefault(previous.agent, []).append(previous)
            if row is not None:
                row.status, row.reused = AgentStatus.SUCCEEDED, True
                row.usage, row.cost = previous.usage, previous.cost
                row.model, row.provider = previous.model, previous.provider
                row.started_at, row.finished_at = previous.started_at, previous.finished_at
                row.streamed = (previous.output or "")[-PREVIEW_BUFFER:]

    def _apply_to_row(self, row: AgentRow, event: Event, *, count: bool = True) -> None:
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
            row.cost = _add_cost(row.cost, attempt.cost)
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
            row.skip_cause = result.skip_cause
            row.cached = result.cached
            row.usage, row.cost = result.usage, result.cost  # the engine's totals are authoritative
            if result.instances is not None:
                self._settle_fan_out(row, result)
            if result.started_at is not None:
                row.started_at = result.started_at
            row.finished_at = result.finished_at
            if result.output:
                row.streamed = result.output[-PREVIEW_BUFFER:]
            if count:  # a workflow agent, not an instance
                self._settled += 1
                row.finished_order = self._settled

    # --- fan-outs --------------------------------------------------------------------

    def _start_fan_out(self, event: FanOutStarted) -> None:
        agent, iteration, _ = split_run_key(event.name)  # writer#2: a fan-out in a loop
        row = self.rows.get(agent)
        if row is None:
            return
        if iteration is not None:  # each iteration's items are counted afresh
            row.fan_out = FanOut(event.item_count)
            row.status = AgentStatus.RUNNING
            return
        row.status, row.started_at = AgentStatus.RUNNING, event.started_at
        row.fan_out = FanOut(event.item_count)
        # Items a resume reuses succeeded in an earlier run (whose spend is shown apart).
        reused = len(self._reused_items.pop(event.name, []))
        if reused:
            row.fan_out.settled[AgentStatus.SUCCEEDED] += reused

    def _apply_to_instance(self, name: str, event: Event) -> None:
        agent, iteration, index = split_run_key(name)
        if iteration is not None and index is None:
            self._apply_to_iteration(agent, event)
            return
        parent = self.rows.get(agent) if index is not None else None
        fan_out = parent.fan_out if parent is not None else None
        if parent is None or fan_out is None or index is None:
            return
        instance = fan_out.active.get(name)
        if instance is None:
            if isinstance(event, AgentStarted):
                instance = fan_out.active[name] = AgentRow(name, index)
            elif not isinstance(event, AgentFinished):
                return  # an event of an instance already settled
        if instance is not None:
            self._apply_to_row(instance, event, count=False)
        if isinstance(event, AgentFinished):
            result = event.result
            fan_out.active.pop(name, None)
            fan_out.settled[shown_status(result.status, result.skip_cause)] += 1
            if not result.reused:
                fan_out.usage = fan_out.usage + result.usage
                fan_out.cost = _add_cost(fan_out.cost, result.cost)
            failed = result.status is not AgentStatus.SUCCEEDED
            if failed and result.skip_cause is not SkipCause.ROUTED and not fan_out.first_failure:
                fan_out.first_failure = f"{name}: {result.error or result.status}"
        if isinstance(event, (AttemptSucceeded, AttemptFailed, AgentFinished)):
            # The row's figures: the settled instances' and those under way.
            parent.usage, parent.cost = fan_out.usage, fan_out.cost
            for row in fan_out.active.values():
                parent.usage = parent.usage + row.usage
                parent.cost = _add_cost(parent.cost, row.cost)

    def _apply_to_iteration(self, agent: str, event: Event) -> None:
        """An iteration's events show on its member's row: its status while the loop goes on,
        its spend added to the iterations' before it."""
        row = self.rows.get(agent)
        if row is None:
            return
        if not isinstance(event, AgentFinished):
            self._apply_to_row(row, event, count=False)
            return
        result = event.result
        if not result.reused:
            row.loop_usage = row.loop_usage + result.usage
            row.loop_cost = _add_cost(row.loop_cost, result.cost)
        row.usage, row.cost = row.loop_usage, row.loop_cost
        row.calls_in_progress.clear()
        row.error, row.skip_cause = result.error, result.skip_cause
        # The loop goes on until its members settle: the row stays under way.
        row.status = AgentStatus.RUNNING
        if result.output:
            row.streamed = result.output[-PREVIEW_BUFFER:]

    def _settle_fan_out(self, row: AgentRow, result: AgentResult) -> None:
        """The agent settled: its instances' statuses as the engine reports them."""
        instances = result.instances or []
        fan_out = row.fan_out or FanOut(result.item_count or len(instances))
        fan_out.active.clear()
        fan_out.settled = Counter(shown_status(i.status, i.skip_cause) for i in instances)
        # Items never started (the cost cap, a stop) are not waiting any more: they did not run.
        unstarted = (result.item_count or len(instances)) - len(instances)
        if unstarted > 0:
            fan_out.settled[NOT_RUN] += unstarted
        row.fan_out = fan_out

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
        """How many agents are in each status ("retrying" and "routed away" counted apart)."""
        return Counter(r.shown_status for r in self.rows.values())


def _add_cost(total: float | None, cost: float | None) -> float | None:
    """None (unknown) once any part's price is unknown."""
    return None if total is None or cost is None else total + cost


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
