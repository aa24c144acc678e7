"""One run's events as spans, following the OpenTelemetry GenAI semantic conventions
(semantic conventions v1.41.0, the ``gen_ai.*`` namespace: development status).

    invoke_workflow WORKFLOW      INTERNAL, the root: one per workflow run
    └── invoke_agent AGENT        INTERNAL, one per agent that ran (reused and skipped agents did not)
        ├── chat MODEL            CLIENT, one per attempt (retries and cancelled calls included)
        ├── execute_tool TOOL     INTERNAL, one per tool call (``record_tool_call``)
        └── invoke_agent AGENT    INTERNAL, a fan-out's: one per item that ran, with its
            ├── chat MODEL        index (``agentops.item.index``), its chat and tool
            └── execute_tool TOOL spans under it as any agent's

A fan-out agent's span lasts from ``FanOutStarted`` to its ``AgentFinished`` and carries
its item count and how many items ended in each status (``agentops.fan_out.*``); the
item itself is content (``agentops.item``, as JSON, when at most ``ITEM_BYTES``). An
agent that was skipped without running (routed away by its ``when``, a dependency that
failed, the cost cap) has no span, as before, but an ``agentops.agent.skipped`` event on
the workflow span records it: the agent, the cause and, for a ``when``, the expression
and its outcome; what the decision read (``agentops.decision.values``, model output) and
the routed reason that quotes it are content. An agent whose ``when`` held has the same
decision attributes on its span.

Spans carry the times the engine measured, not the times their events reached
this subscriber: a chat span starts when its call got its concurrency slot and ends
when the call settled. A resumed run's root links to the root of the run it resumes.

Prompts and outputs are recorded (``gen_ai.input.messages`` / ``gen_ai.output.messages``)
only when ``content`` is on. Nothing here sees an API key: the events carry none,
and a server is known by host and port only (``targets``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    Decision,
    Event,
    FanOutStarted,
    IterationStarted,
    LoopFinished,
    RunStatus,
    SkipCause,
    ToolCallFinished,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
    split_instance_key,
    split_run_key,
)
from agentops.runtime.usage import Usage
from agentops.tracing.span_ref import SpanRef
from agentops.tracing.targets import ChatTarget

if TYPE_CHECKING:
    from agentops.runtime.messages import ChatRequest, ChatResponse

RootSpanStarter = Callable[[SpanRef, Callable[[], Span]], Span]
"""Calls its second argument, which starts one span with no parent, so that span gets the
given ids (``TracingSession.start_root_span``: the SDK would choose random ones)."""

SEMCONV_VERSION = "1.41.0"

# gen_ai.* and the general attributes the GenAI conventions use.
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
WORKFLOW_NAME = "gen_ai.workflow.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
OUTPUT_TYPE = "gen_ai.output.type"  # "json" for a call with an output schema
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"

# Ours, for what the conventions have no name for.
RUN_ID = "agentops.workflow_run.id"
RESUMED_FROM = "agentops.workflow_run.resumed_from"
RUN_STATUS = "agentops.workflow_run.status"
AGENT_STATUS = "agentops.agent.status"
ATTEMPTS = "agentops.agent.attempts"
ATTEMPT_NUMBER = "agentops.attempt.number"
COST = "agentops.cost_usd"  # what this span's calls cost; absent when a price is unknown
COST_CAP = "agentops.cost_cap_usd"
SPENT_BEFORE = "agentops.spent_before_usd"
TOKENS_ESTIMATED = "agentops.usage.estimated"

CANCELLED = "cancelled"  # error.type of a call or agent cut off by an interrupt or a run timeout
ITEM_INDEX = "agentops.item.index"  # a fan-out item's position in its list (0-based)
ITEM = "agentops.item"  # the item, as JSON: content, and only when small
ITEM_COUNT = "agentops.fan_out.item_count"
FAN_OUT_STATUS = "agentops.fan_out."  # + a status: how many items ended in it ("...succeeded")
SKIPPED_EVENT = "agentops.agent.skipped"
SKIP_CAUSE = "agentops.skip.cause"  # routed | dependency | cost_cap
SKIP_REASON = "agentops.skip.reason"
DECISION_EXPRESSION = "agentops.decision.expression"  # the ``when``, as written
DECISION_HELD = "agentops.decision.held"
DECISION_VALUES = "agentops.decision.values"  # JSON: each path it read -> the value (content)
LOOP_NAME = "agentops.loop.name"
LOOP_ITERATION = "agentops.loop.iteration"  # on an iteration's agent span (1-based)
LOOP_MAX_ITERATIONS = "agentops.loop.max_iterations"
LOOP_ITERATIONS = "agentops.loop.iterations"  # on the loop's span: how many ran
LOOP_END = "agentops.loop.end_reason"  # why it ended: until held, max_iterations reached, ...
WAITING_EVENT = "agentops.agent.waiting_approval"  # on the workflow span: an agent waits
APPROVAL_MODE = "agentops.approval.mode"  # before | after

CANCELLED = "cancelled"  # error.type of a call or agent cut off by an interrupt or a run timeout
COST_CAP_REACHED = "cost_cap"  # error.type of an agent skipped by the cost cap after attempts
OTHER_ERROR = "_OTHER"
ITEM_BYTES = 1024  # a larger item is not put on its span, content or not
FAN_OUT_STATUSES = ("succeeded", "failed", "skipped", "cancelled", "not_run")


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


@dataclass
class _RunningAgent:
    span: Span
    provider: str  # the provider's name in the workflow (targets are keyed by it)
    model: str
    request: ChatRequest | None = None  # the latest attempt's
    spanned: set[int] = field(default_factory=set)  # attempt numbers that have a chat span
    agent: str = ""  # the workflow agent (a fan-out item's is its fan-out's)


class RunTracer:
    """Turns one run's events into spans. Pass it to the engine as a subscriber.

    ``tracer`` makes the spans and ``start_root`` starts the workflow span with ``ids``,
    chosen beforehand so the history can record them; ``targets`` maps provider names
    to where their calls go; ``links`` are spans the workflow span links to (the run it
    resumes, a batch).
    """

    wants_tokens = False  # spans carry whole outputs: tracing alone does not make calls stream

    def __init__(
        self,
        tracer: Tracer,
        start_root: RootSpanStarter,
        targets: Mapping[str, ChatTarget],
        *,
        ids: SpanRef,
        links: Sequence[SpanRef] = (),
        content: bool = False,
    ) -> None:
        self.tracer = tracer
        self.start_root = start_root
        self.targets = targets
        self.ids = ids
        self.links = list(links)
        self.content = content
        self._root: Span | None = None
        self._agents: dict[str, _RunningAgent] = {}  # by name: ``writer[2]`` for an item
        self._fan_outs: dict[str, Span] = {}
        self._models: dict[str, str] = {}  # agent -> its model, for a fan-out's span
        self._loops: dict[str, Span] = {}  # a loop under way: its span, its iterations' parent
        self._loop_of: dict[str, str] = {}  # a loop's member -> the loop

    def __call__(self, event: Event) -> None:
        if isinstance(event, WorkflowStarted):
            self._start_workflow(event)
        elif isinstance(event, FanOutStarted):
            self._start_fan_out(event)
        elif isinstance(event, IterationStarted):
            self._start_iteration(event)
        elif isinstance(event, LoopFinished):
            self._finish_loop(event)
        elif isinstance(event, AgentStarted):
            self._start_agent(event)
        elif isinstance(event, AttemptStarted):
            running = self._agents.get(event.name)
            if running is not None and event.request is not None:
                running.request = event.request
        elif isinstance(event, AttemptSucceeded | AttemptFailed):
            running = self._agents.get(event.name)
            if running is not None:
                response = event.response if isinstance(event, AttemptSucceeded) else None
                self._record_chat(running, event.attempt, response)
        elif isinstance(event, ToolCallFinished):
            call = event.call
            self.record_tool_call(
                event.name,
                call.tool,
                call_id=call.call_id,
                started_at=call.started_at,
                finished_at=call.started_at + call.duration,
                error_type=None if call.status == "succeeded" else call.status,
                error=call.error,
                arguments=call.arguments,
                result=call.result,
            )
        elif isinstance(event, AgentFinished):
            self._finish_agent(event.result)
        elif isinstance(event, WorkflowFinished):
            self._finish_workflow(event.result)

    # --- the hook for tool calls ------------------------------------------------------

    def record_tool_call(
        self,
        agent: str,
        tool: str,
        *,
        call_id: str | None,
        started_at: float,
        finished_at: float,
        error_type: str | None = None,
        error: str | None = None,
        arguments: str | None = None,
        result: str | None = None,
        tool_type: str = "function",
    ) -> None:
        """An ``execute_tool TOOL`` span under ``agent``'s span, for a tool call that has
        settled (times are unix seconds). ``arguments`` and ``result`` are content:
        recorded only when capture is on. The engine's tool events call this."""
        running = self._agents.get(agent)
        attributes: dict[str, Any] = {
            OPERATION: "execute_tool",
            AGENT_NAME: running.agent if running is not None else agent,
            TOOL_NAME: tool,
            TOOL_TYPE: tool_type,
        }
        if call_id is not None:
            attributes[TOOL_CALL_ID] = call_id
        if self.content and arguments is not None:
            attributes[TOOL_ARGUMENTS] = arguments
        if self.content and result is not None:
            attributes[TOOL_RESULT] = result
        span = self.tracer.start_span(
            f"execute_tool {tool}",
            context=self._context_of(running.span if running is not None else self._root),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(started_at),
        )
        if error_type is not None or error is not None:
            _fail(span, error_type or OTHER_ERROR, error)
        span.end(end_time=_ns(finished_at))

    # --- the workflow ---------------------------------------------------------------

    def _start_workflow(self, event: WorkflowStarted) -> None:
        workflow = event.workflow
        attributes: dict[str, Any] = {OPERATION: "invoke_workflow", WORKFLOW_NAME: workflow.name}
        cap = event.cost_cap if event.cost_cap is not None else workflow.policies.cost_cap
        if cap is not None:
            attributes[COST_CAP] = cap
        if event.resumed_from is not None:
            attributes[RESUMED_FROM] = event.resumed_from
            attributes[SPENT_BEFORE] = event.spent_before
        links = [Link(_remote(ref)) for ref in self.links]
        self._models = {agent.name: agent.model for agent in workflow.agents}
        self._loop_of = {member: loop.name for loop in workflow.loops for member in loop.agents}
        self._root = self.start_root(
            self.ids,
            lambda: self.tracer.start_span(
                f"invoke_workflow {workflow.name}",
                context=trace.set_span_in_context(trace.INVALID_SPAN),
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                links=links,
                start_time=_ns(event.started_at),
            ),
        )

    def _finish_workflow(self, result: WorkflowResult) -> None:
        # The engine settles every agent (and item) first; this is a safety net.
        settled = dict(result.agents)
        for agent in result.agents.values():
            settled.update((item.name, item) for item in agent.instances or ())
        for name in [*self._agents, *self._fan_outs]:
            if name in settled:
                self._finish_agent(settled[name])
            elif name in self._agents:
                self._agents.pop(name).span.end()
            elif name in self._fan_outs:
                self._fan_outs.pop(name).end()
        for span in self._loops.values():
            span.end()
        self._loops.clear()
        root = self._root
        if root is None:
            return
        usage = result.usage
        root.set_attributes({RUN_STATUS: result.status.value, COST: result.cost, **_tokens(usage)})
        if result.workflow_run_id is not None:
            root.set_attribute(RUN_ID, result.workflow_run_id)
        if result.status is not RunStatus.SUCCEEDED:
            unsettled = [
                n
                for n, a in result.agents.items()
                if a.status is not AgentStatus.SUCCEEDED and a.skip_cause is not SkipCause.ROUTED
            ]
            _fail(
                root,
                result.status.value,
                f"{len(unsettled)} of {len(result.agents)} agents did not succeed",
            )
        root.end(end_time=_ns(result.finished_at))
        self._root = None

    # --- agents ---------------------------------------------------------------------

    def _parent_of(self, name: str) -> Span | None:
        """An item's parent is its fan-out's span; an iteration's, its loop's; else the root."""
        owner, index = split_instance_key(name)
        if index is not None and owner in self._fan_outs:
            return self._fan_outs[owner]
        agent, iteration, _ = split_run_key(name)
        if iteration is not None and agent in self._loop_of:
            return self._loops.get(self._loop_of[agent], self._root)
        return self._root

    def _iteration_attributes(self, name: str) -> dict[str, Any]:
        agent, iteration, _ = split_run_key(name)
        if iteration is None:
            return {}
        return {LOOP_NAME: self._loop_of.get(agent, ""), LOOP_ITERATION: iteration}

    def _start_iteration(self, event: IterationStarted) -> None:
        if event.loop in self._loops:
            return  # one span for the whole loop; each iteration's agent spans say which
        self._loops[event.loop] = self.tracer.start_span(
            f"loop {event.loop}",
            context=self._context_of(self._root),
            kind=SpanKind.INTERNAL,
            attributes={LOOP_NAME: event.loop, LOOP_MAX_ITERATIONS: event.max_iterations},
            start_time=_ns(event.started_at),
        )

    def _finish_loop(self, event: LoopFinished) -> None:
        span = self._loops.pop(event.loop, None)
        if span is None:
            return
        span.set_attributes({LOOP_ITERATIONS: event.iterations, LOOP_END: event.reason})
        if not event.ok:
            _fail(span, OTHER_ERROR, event.reason)
        span.end()

    def _waiting(self, result: AgentResult) -> None:
        """An agent waiting for a person: an event on the workflow span says what for."""
        if self._root is None or result.awaiting is None:
            return
        attributes = {AGENT_NAME: result.agent_name, APPROVAL_MODE: result.awaiting.mode}
        timestamp = _ns(result.finished_at) if result.finished_at is not None else None
        self._root.add_event(WAITING_EVENT, attributes, timestamp=timestamp)

    def _start_agent(self, event: AgentStarted) -> None:
        target = self._target(event.provider)
        agent = split_run_key(event.name)[0]
        span = self.tracer.start_span(
            f"invoke_agent {agent}",
            context=self._context_of(self._parent_of(event.name)),
            kind=SpanKind.INTERNAL,
            attributes={
                OPERATION: "invoke_agent",
                AGENT_NAME: agent,
                PROVIDER: target.provider_name,
                REQUEST_MODEL: event.model,
                **self._iteration_attributes(event.name),
            },
            start_time=_ns(event.started_at),
        )
        self._agents[event.name] = _RunningAgent(span, event.provider, event.model, agent=agent)

    def _unstarted_span(self, result: AgentResult) -> _RunningAgent:
        at = result.started_at or result.finished_at
        span = self.tracer.start_span(
            f"invoke_agent {result.agent_name}",
            context=self._context_of(self._fan_outs.get(result.agent_name) or self._root),
            kind=SpanKind.INTERNAL,
            attributes={OPERATION: "invoke_agent", AGENT_NAME: result.agent_name},
            start_time=_ns(at) if at is not None else None,
        )
        return _RunningAgent(span, result.provider, result.model, agent=result.agent_name)

    def _start_fan_out(self, event: FanOutStarted) -> None:
        agent = split_run_key(event.name)[0]  # writer#2: a fan-out inside a loop
        attributes: dict[str, Any] = {
            OPERATION: "invoke_agent",
            AGENT_NAME: agent,
            ITEM_COUNT: event.item_count,
            **self._iteration_attributes(event.name),
        }
        if agent in self._models:
            attributes[REQUEST_MODEL] = self._models[agent]
        self._fan_outs[event.name] = self.tracer.start_span(
            f"invoke_agent {agent}",
            context=self._context_of(self._parent_of(event.name)),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(event.started_at),
        )

    def _finish_fan_out(self, span: Span, result: AgentResult) -> None:
        instances = result.instances or []
        counts = dict.fromkeys(FAN_OUT_STATUSES, 0)
        for instance in instances:
            counts[instance.status.value] = counts.get(instance.status.value, 0) + 1
        counts["not_run"] = max(0, (result.item_count or 0) - len(instances))
        span.set_attributes(
            {
                AGENT_STATUS: result.status.value,
                ITEM_COUNT: result.item_count or len(instances),
                **{FAN_OUT_STATUS + status: n for status, n in counts.items()},
                **_tokens(result.usage),
            }
        )
        if result.cost is not None:
            span.set_attribute(COST, result.cost)
        self._decided(span, result.decision)
        if result.status is AgentStatus.FAILED:
            _fail(span, _fan_out_error(instances), result.error)
        elif result.status is AgentStatus.CANCELLED:
            _fail(span, CANCELLED, result.error)
        span.end(end_time=_ns(result.finished_at) if result.finished_at is not None else None)

    def _skipped(self, result: AgentResult) -> None:
        """An agent settled without running: an event on the workflow span says why."""
        if self._root is None or result.status is not AgentStatus.SKIPPED or result.reused:
            return
        attributes: dict[str, Any] = {AGENT_NAME: result.agent_name}
        if result.item_index is not None:
            attributes[ITEM_INDEX] = result.item_index
        if result.skip_cause is not None:
            attributes[SKIP_CAUSE] = result.skip_cause.value
        # A routed reason quotes what the decision read: content, like the values.
        if result.error and (self.content or result.skip_cause is not SkipCause.ROUTED):
            attributes[SKIP_REASON] = result.error
        attributes.update(self._decision_attributes(result.decision))
        timestamp = _ns(result.finished_at) if result.finished_at is not None else None
        self._root.add_event(SKIPPED_EVENT, attributes, timestamp=timestamp)

    def _decided(self, span: Span, decision: Decision | None) -> None:
        if decision is not None:
            span.set_attributes(self._decision_attributes(decision))

    def _decision_attributes(self, decision: Decision | None) -> dict[str, Any]:
        if decision is None:
            return {}
        attributes: dict[str, Any] = {
            DECISION_EXPRESSION: decision.expression,
            DECISION_HELD: decision.held,
        }
        if self.content:
            attributes[DECISION_VALUES] = _json(dict(decision.values))
        return attributes

    def _finish_agent(self, result: AgentResult) -> None:
        fan_out = self._fan_outs.pop(result.name, None)
        if fan_out is not None:
            self._finish_fan_out(fan_out, result)
            return
        running = self._agents.pop(result.name, None)
        if (
            running is None
            and result.status is AgentStatus.FAILED
            and not result.reused
            and result.iterations is None  # a loop's member: its iterations have the spans
        ):
            # Failed before any call (its ``when`` or ``for_each`` could not be evaluated).
            running = self._unstarted_span(result)
        if result.status is AgentStatus.WAITING_APPROVAL:
            self._waiting(result)
        if running is None:  # never started: skipped, reused, waiting, or cancelled waiting
            self._skipped(result)
            return
        for attempt in result.attempts:  # a call cut off by an interrupt emitted no attempt event
            if attempt.number not in running.spanned:
                self._record_chat(running, attempt, None)
        span = running.span
        span.set_attributes(
            {
                AGENT_STATUS: result.status.value,
                ATTEMPTS: len(result.attempts),
                **_tokens(result.usage),
            }
        )
        if result.cost is not None:
            span.set_attribute(COST, result.cost)
        if result.item_index is not None:
            span.set_attribute(ITEM_INDEX, result.item_index)
            if self.content:
                item = _json(result.item)
                if len(item.encode()) <= ITEM_BYTES:
                    span.set_attribute(ITEM, item)
        self._decided(span, result.decision)
        if result.status is AgentStatus.FAILED:
            last = result.attempts[-1] if result.attempts else None
            _fail(span, (last.error_type if last else None) or OTHER_ERROR, result.error)
        elif result.status is AgentStatus.CANCELLED:
            _fail(span, CANCELLED, result.error)
        elif result.status is AgentStatus.SKIPPED:
            _fail(span, COST_CAP_REACHED, result.error)
        span.end(end_time=_ns(result.finished_at) if result.finished_at is not None else None)

    # --- calls ----------------------------------------------------------------------

    def _record_chat(
        self, running: _RunningAgent, attempt: Attempt, response: ChatResponse | None
    ) -> None:
        request = running.request
        model = request.model if request is not None else running.model
        target = self._target(running.provider)
        attributes: dict[str, Any] = {
            OPERATION: "chat",
            PROVIDER: target.provider_name,
            REQUEST_MODEL: model,
        }
        if target.server_address is not None:
            attributes[SERVER_ADDRESS] = target.server_address
            if target.server_port is not None:
                attributes[SERVER_PORT] = target.server_port
        if request is not None:
            attributes[REQUEST_MAX_TOKENS] = request.max_tokens
            if request.temperature is not None:
                attributes[REQUEST_TEMPERATURE] = request.temperature
            if request.response_format is not None:
                attributes[OUTPUT_TYPE] = "json"
        span = self.tracer.start_span(
            f"chat {model}",
            context=self._context_of(running.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(attempt.started_at),
        )
        running.spanned.add(attempt.number)
        span.set_attributes({ATTEMPT_NUMBER: attempt.number, **_tokens(attempt.usage)})
        if attempt.cost is not None:
            span.set_attribute(COST, attempt.cost)
        if response is not None:
            if response.model:
                span.set_attribute(RESPONSE_MODEL, response.model)
            if response.finish_reason:
                span.set_attribute(FINISH_REASONS, [response.finish_reason])
        if self.content and request is not None:
            span.set_attribute(INPUT_MESSAGES, _input_messages(request))
            if response is not None:
                span.set_attribute(OUTPUT_MESSAGES, _output_messages(response))
        if attempt.status == "cancelled":
            _fail(span, CANCELLED, attempt.error)
        elif attempt.status != "succeeded":
            if attempt.http_status is not None:
                span.set_attribute(HTTP_STATUS, attempt.http_status)
            _fail(span, attempt.error_type or OTHER_ERROR, attempt.error)
        span.end(end_time=_ns(attempt.started_at + attempt.duration))

    # --- helpers --------------------------------------------------------------------

    def _target(self, provider: str) -> ChatTarget:
        return self.targets.get(provider) or ChatTarget(provider)

    @staticmethod
    def _context_of(span: Span | None) -> Any:
        return trace.set_span_in_context(span if span is not None else trace.INVALID_SPAN)


def _fail(span: Span, error_type: str, description: str | None) -> None:
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, description))


def _fan_out_error(instances: list[AgentResult]) -> str:
    """A failed fan-out's error.type: the cost cap's, else its first failed item's."""
    if any(i.skip_cause is SkipCause.COST_CAP for i in instances):
        return COST_CAP_REACHED
    for instance in instances:
        if instance.status is AgentStatus.FAILED:
            last = instance.attempts[-1] if instance.attempts else None
            return (last.error_type if last else None) or OTHER_ERROR
    return OTHER_ERROR


def _json(value: Any) -> str:
    """A value from a model's output as JSON; what JSON cannot hold, as its text."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _tokens(usage: Usage) -> dict[str, Any]:
    return {
        INPUT_TOKENS: usage.input_tokens,
        OUTPUT_TOKENS: usage.output_tokens,
        TOKENS_ESTIMATED: usage.estimated,
    }


def _remote(ref: SpanRef) -> SpanContext:
    return SpanContext(
        int(ref.trace_id, 16),
        int(ref.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _input_messages(request: ChatRequest) -> str:
    """The messages as sent, in the conventions' input-messages JSON schema."""
    return json.dumps(
        [
            {"role": m.role, "parts": [{"type": "text", "content": m.content}]}
            for m in request.messages
        ],
        ensure_ascii=False,
    )


def _output_messages(response: ChatResponse) -> str:
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [{"type": "text", "content": response.text}],
    }
    message["finish_reason"] = response.finish_reason or "stop"
    return json.dumps([message], ensure_ascii=False)


BATCH_ID = "agentops.batch.id"
BATCH_ROWS = "agentops.batch.rows"
BATCH_STATUS = "agentops.batch.status"


class BatchSpan:
    """``invoke_batch WORKFLOW``: one span for a whole batch, in a trace of its own. Each row
    is a trace of its own too (a row is a workflow run), whose root links to this span."""

    def __init__(self, tracer: Tracer, workflow: str, batch_id: int, rows: int) -> None:
        self.span = tracer.start_span(
            f"invoke_batch {workflow}",
            kind=SpanKind.INTERNAL,
            attributes={WORKFLOW_NAME: workflow, BATCH_ID: batch_id, BATCH_ROWS: rows},
        )
        context = self.span.get_span_context()
        self.ref = SpanRef(f"{context.trace_id:032x}", f"{context.span_id:016x}")

    def end(self, status: str, cost: float, rows_succeeded: int) -> None:
        self.span.set_attributes(
            {BATCH_STATUS: status, COST: cost, "agentops.batch.rows_succeeded": rows_succeeded}
        )
        if status != RunStatus.SUCCEEDED.value:
            _fail(self.span, status, f"{rows_succeeded} rows succeeded")
        self.span.end()


__all__ = ["SEMCONV_VERSION", "BatchSpan", "RunTracer"]
