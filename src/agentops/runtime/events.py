"""The events the engine emits, and the result records they carry.

The engine knows nothing about SQLite or Rich: storage, the terminal view and
anything added later (tracing, a web view) subscribe to these events. A
subscriber is any callable taking one ``Event``; it is called synchronously on
the engine's event loop, in emission order, so it must be quick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Union

from agentops.runtime.usage import Usage as Usage  # re-exported: the result records here carry it

if TYPE_CHECKING:  # named in annotations only: importing spec would load pydantic
    from agentops.runtime.messages import ChatRequest, ChatResponse
    from agentops.workflow.spec import Workflow


class AgentStatus(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    # ``approval:``: it waits for a person (before it runs, or with its answer); its dependents
    # do not start, and the run ends ``waiting`` once nothing else can run.
    WAITING_APPROVAL = "waiting_approval"

    @property
    def settled(self) -> bool:
        return self not in (AgentStatus.WAITING, AgentStatus.RUNNING)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every agent succeeded
    FAILED = "failed"  # finished, with failed or skipped agents
    INTERRUPTED = (
        "interrupted"  # Ctrl-C, SIGTERM, or a dead process (a whole-run timeout is FAILED)
    )
    WAITING = "waiting"  # nothing else can run until a person decides an approval (exit 3)


class SkipCause(StrEnum):
    """Why an agent was skipped: only ``routed`` leaves the run able to succeed."""

    ROUTED = "routed"  # its ``when`` was false, or it waited only on agents routed away
    DEPENDENCY = "dependency"  # an agent it needs failed, was cancelled or skipped for that
    COST_CAP = "cost_cap"  # its next call did not fit under the cost cap


@dataclass(frozen=True)
class Decision:
    """A ``when`` evaluated: the expression, whether it held, and the values it read."""

    expression: str
    held: bool
    values: Mapping[str, Any] = field(default_factory=dict)  # path as written -> its value


def instance_key(agent: str, index: int) -> str:
    """The name of item ``index`` (0-based) of fan-out agent ``agent``: ``writer[2]``."""
    return f"{agent}[{index}]"


def iteration_key(agent: str, iteration: int) -> str:
    """The name of iteration ``iteration`` (1-based) of loop member ``agent``: ``draft#2``; an
    item of a fan-out inside a loop is ``instance_key(iteration_key(...), index)``: ``writer#2[0]``."""
    return f"{agent}#{iteration}"


def split_instance_key(name: str) -> tuple[str, int | None]:
    """``instance_key`` reversed: ``writer[2]`` -> ("writer", 2), ``writer#2[0]`` ->
    ("writer#2", 0); an agent's name (or an iteration's) -> (name, None)."""
    agent, bracket, rest = name.partition("[")  # agent names cannot hold brackets
    if agent and bracket and rest.endswith("]") and rest[:-1].isdigit():
        return agent, int(rest[:-1])
    return name, None


def split_run_key(name: str) -> tuple[str, int | None, int | None]:
    """Any agent run's name as (agent, iteration, item index): ``writer#2[0]`` ->
    ("writer", 2, 0), ``draft#3`` -> ("draft", 3, None), ``writer[1]`` -> ("writer", None, 1)."""
    head, index = split_instance_key(name)
    agent, hash_, number = head.partition("#")  # agent names cannot hold #
    if agent and hash_ and number.isdigit():
        return agent, int(number), index
    return head, None, index


def run_key(agent: str, iteration: int | None, item_index: int | None) -> str:
    """``split_run_key`` reversed."""
    name = agent if iteration is None else iteration_key(agent, iteration)
    return name if item_index is None else instance_key(name, item_index)


@dataclass(frozen=True)
class ApprovalRequest:
    """What an agent with ``approval:`` asks a person for: ``mode`` before (its prompt) or
    after (its answer); unanswered after ``timeout`` seconds, ``on_timeout`` decides."""

    mode: str  # "before" | "after"
    timeout: float | None = None
    on_timeout: str = "reject"  # "reject" | "approve"


@dataclass(frozen=True)
class Approval:
    """An approval recorded for a run a resume continues: its ``verdict`` (approved,
    rejected, revise; None: still pending), who gave it, when, and the comment, reason or
    feedback; for ``after``, ``answer`` is the agent's answer that waited (reused, never
    asked again). ``id``: its row, which the resume closes so it is never applied twice."""

    mode: str
    verdict: str | None = None
    by: str | None = None
    at: float | None = None
    text: str | None = None
    answer: AgentResult | None = None
    id: int | None = None
    timed_out: bool = False  # nobody decided in time: ``verdict`` is its on_timeout


@dataclass(slots=True)
class Attempt:
    """One call to a provider, as the engine saw it."""

    number: int  # 1-based
    status: str  # "succeeded" | "failed" | "cancelled"
    started_at: float  # unix time
    duration: float  # seconds
    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0  # None: the model has no known price
    error: str | None = None
    error_type: str | None = None
    http_status: int | None = None
    turn: int = 1  # the agent's model call this attempt made (1-based); retries share its turn
    validation_error: str | None = (
        None  # structured output: why this answer did not validate (then re-asked)
    )
    # Answered from the response cache (or a replayed recording): no call was made, the usage
    # is the original's, ``cost`` is 0 and ``saved`` what the original cost.
    cached: bool = False
    saved: float | None = None
    request_key: str | None = (
        None  # the request's key (``runtime.cache.RequestKey``), if it has one
    )
    request_digest: str | None = None  # its digest (JSON), for a replay's mismatch message
    response: ChatResponse | None = None  # what a succeeded attempt answered (recorded for replays)


@dataclass(slots=True)
class ToolCallRecord:
    """One tool call an agent's model asked for, as it was run.

    ``tool`` is the name as users write it (``add``, ``kb.lookup``); ``arguments``
    is the JSON text the model wrote; ``result`` is what went back to the model
    (for an error too: ``error`` says what went wrong). ``status`` is
    ``succeeded``, ``failed`` (an exception, a timeout, invalid arguments, an MCP
    ``isError`` result) or ``cancelled``.
    """

    turn: int
    call_id: str
    tool: str
    arguments: str
    status: str
    started_at: float  # unix time
    duration: float  # seconds
    result: str | None = None
    error: str | None = None


@dataclass(slots=True)
class AgentResult:
    name: str
    status: AgentStatus
    model: str
    provider: str
    output: str | None = None
    error: str | None = None  # for failed: the last error; for skipped: the reason
    prompt: str | None = None  # the rendered messages, as sent
    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0  # None: some attempt had no known price
    attempts: list[Attempt] = field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    reused: bool = False  # taken from an earlier run by resume, not called again
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    value: Any = (
        None  # structured output: the answer parsed (``output`` is its JSON text); None otherwise
    )
    skip_cause: SkipCause | None = None  # for skipped: why (routed away, a dependency, the cap)
    decision: Decision | None = None  # its ``when``, as evaluated
    # A fan-out instance: ``name`` is ``instance_key(agent, item_index)``, ``item`` its item.
    agent: str | None = None
    item_index: int | None = None
    item: Any = None
    # A fan-out agent: its instances in item order (None: not a fan-out), of ``item_count``
    # items (instances the cost cap or a stop left unstarted are not in the list).
    instances: list[AgentResult] | None = None
    item_count: int | None = None
    # A loop's iteration of a member: ``name`` is ``iteration_key(agent, iteration)``; and the
    # member's own result: its ``iterations`` in order, ``iteration`` the number run (its
    # output the last one's), ``loop_end`` why its loop ended. Both carry the ``loop``.
    loop: str | None = None
    iteration: int | None = None
    iterations: list[AgentResult] | None = None
    loop_end: str | None = None
    # ``approval:``: what it waits for (status waiting_approval), and the decision it ran under.
    awaiting: ApprovalRequest | None = None
    approval: Approval | None = None
    node: str | None = None  # executor: ray: the Ray node id that ran it (the last, if it moved)

    def add_attempt(self, attempt: Attempt) -> None:
        """Count ``attempt`` in: its tokens and cost join the run's (an unknown cost makes it unknown)."""
        self.attempts.append(attempt)
        usage = self.usage
        # Usage is a value, never changed in place: added to nothing, the attempt's is the sum.
        counted = usage.input_tokens or usage.output_tokens or usage.estimated
        self.usage = usage + attempt.usage if counted else attempt.usage
        self.cost = None if self.cost is None or attempt.cost is None else self.cost + attempt.cost

    def add_spend_of(self, parts: Iterable[AgentResult]) -> None:
        """Tokens and cost of the runs this one is made of (a fan-out's items, a loop member's
        iterations); a reused part was paid for by an earlier run. Cost None: one is unknown."""
        spent = [part for part in parts if not part.reused]
        self.usage = sum((part.usage for part in spent), Usage())
        costs = [part.cost for part in spent]
        self.cost = None if None in costs else sum(cost or 0.0 for cost in costs)

    @property
    def agent_name(self) -> str:
        """The workflow agent this result is of (for an instance, its fan-out agent)."""
        return self.agent or self.name

    @property
    def is_instance(self) -> bool:
        """One item of a fan-out or one iteration of a loop, not a workflow agent's own result."""
        return self.agent is not None

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each turn."""
        if not self.attempts:
            return 0
        return len(self.attempts) - len({attempt.turn for attempt in self.attempts})

    @property
    def cached(self) -> bool:
        """Every call it made was answered from the response cache (or a replay)."""
        return bool(self.attempts) and all(attempt.cached for attempt in self.attempts)

    @property
    def turns(self) -> int:
        return max((attempt.turn for attempt in self.attempts), default=0)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass
class WorkflowResult:
    workflow: str
    status: RunStatus
    agents: dict[str, AgentResult]
    started_at: float
    finished_at: float
    workflow_run_id: int | None = None  # set when the run was recorded in a store
    cost_cap: float | None = None
    spent_before: float = 0.0  # spent by the runs this one resumes; counts against cost_cap

    @property
    def cost(self) -> float:
        return sum(a.cost or 0.0 for a in self.agents.values() if not a.reused)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for result in self.agents.values():
            if not result.reused:
                total = total + result.usage
        return total

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    def __repr__(self) -> str:
        # Short: asyncio's Runner puts the repr of the task holding this result into an error
        # message it builds and discards on exit, and a full one of 10,000 agents costs seconds.
        shown = ", ".join(f"{name}: {r.status.value}" for name, r in list(self.agents.items())[:5])
        more = f", … {len(self.agents) - 5} more" if len(self.agents) > 5 else ""
        return (
            f"WorkflowResult(workflow={self.workflow!r}, status={self.status.value}, "
            f"agents={{{shown}{more}}}, cost=${self.cost:.6f}, "
            f"workflow_run_id={self.workflow_run_id})"
        )

    @property
    def exit_code(self) -> int:
        """0 all succeeded, 1 finished with failed/skipped agents, 3 waiting for an approval,
        130 interrupted."""
        return {RunStatus.SUCCEEDED: 0, RunStatus.FAILED: 1, RunStatus.WAITING: 3}.get(
            self.status, 130
        )


# --- events -----------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowStarted:
    workflow: Workflow
    source: str  # the workflow definition as run (YAML text)
    source_path: str | None
    inputs: Mapping[str, Any]
    started_at: float
    resumed_from: int | None = None  # workflow_run_id this run continues
    reused: Mapping[str, AgentResult] = field(default_factory=dict)
    cost_cap: float | None = None  # the cap in force (None: see workflow.policies.cost_cap)
    spent_before: float = 0.0  # spent by the runs this one resumes; counts against the cap
    batch_id: int | None = None  # set when this run is one row of a batch
    batch_row: int | None = None
    trace_id: str | None = None  # the OpenTelemetry trace of this run (32 hex digits), when traced
    trace_span_id: str | None = None  # its workflow span (16 hex digits)
    rerun_from: str | None = (
        None  # a rerun of ``resumed_from`` from this agent (``agentops rerun``)
    )
    replaying: str | None = None  # a replay: what its calls are answered from ("workflow run 7")
    # The approvals of the run it resumes, by agent: the history closes them (never applied twice).
    approvals: Mapping[str, Approval] = field(default_factory=dict)


@dataclass(frozen=True)
class AgentStarted:
    name: str
    model: str
    provider: str
    prompt: str
    started_at: float


@dataclass(frozen=True)
class FanOutStarted:
    """A fan-out agent has its items; its instances (``writer[0]``, ...) start as slots free."""

    name: str
    item_count: int
    started_at: float


@dataclass(frozen=True)
class IterationStarted:
    """Iteration ``iteration`` (1-based) of loop ``loop`` starts; its members run as
    ``draft#2``, ..., each settling as an instance of its agent."""

    loop: str
    iteration: int
    max_iterations: int
    started_at: float


@dataclass(frozen=True)
class LoopFinished:
    """A loop ended: after ``iterations`` iterations, for ``reason`` (``until`` held,
    ``max_iterations`` reached, a member failed, the run stopped); ``ok``: its members' last
    answers stand (they settle right after this event), else each of them fails."""

    loop: str
    iterations: int
    reason: str
    ok: bool


@dataclass(frozen=True)
class AttemptStarted:
    name: str
    number: int
    turn: int = 1
    request: ChatRequest | None = None  # what this attempt sends


@dataclass(frozen=True)
class TokensStreamed:
    name: str
    text: str  # the new text only


@dataclass(frozen=True)
class AttemptFailed:
    name: str
    attempt: Attempt
    will_retry: bool
    retry_in: float | None  # seconds, when will_retry


@dataclass(frozen=True)
class AttemptSucceeded:
    name: str
    attempt: Attempt
    response: ChatResponse | None = None  # what the provider answered


@dataclass(frozen=True)
class AnswerRejected:
    """An answer did not follow the agent's output schema (``attempt.validation_error`` says why)."""

    name: str
    attempt: Attempt
    will_reask: bool  # False: no re-asks left (or the run is stopping): the agent fails


@dataclass(frozen=True)
class AgentFinished:
    """An agent settled: succeeded, failed, skipped or cancelled (see result.status).

    A fan-out agent's instances each finish (``result.agent`` set) before the agent does."""

    result: AgentResult


@dataclass(frozen=True)
class CostWarning:
    """Something about cost the user must know (e.g. a model with no known price)."""

    message: str
    name: str | None = None


@dataclass(frozen=True)
class ToolCallStarted:
    """A tool call began (the live view shows it until ``ToolCallFinished``)."""

    name: str  # the agent
    turn: int
    call_id: str
    tool: str
    arguments: str  # JSON text, as the model wrote it
    started_at: float


@dataclass(frozen=True)
class ToolCallFinished:
    name: str  # the agent
    call: ToolCallRecord


@dataclass(frozen=True)
class ToolServerStopped:
    """An MCP server of the run was closed; ``stderr`` is the end of what it wrote there (stdio)."""

    server: str  # its name under tools:
    transport: str  # "stdio" | "http"
    target: str  # the command line, or the URL
    tools: tuple[str, ...]  # the tools it listed
    stderr: str
    started_at: float
    stopped_at: float


@dataclass(frozen=True)
class WorkflowFinished:
    result: WorkflowResult


Event = Union[
    WorkflowStarted,
    AgentStarted,
    FanOutStarted,
    IterationStarted,
    LoopFinished,
    AttemptStarted,
    TokensStreamed,
    AttemptFailed,
    AttemptSucceeded,
    AnswerRejected,
    AgentFinished,
    CostWarning,
    ToolCallStarted,
    ToolCallFinished,
    ToolServerStopped,
    WorkflowFinished,
]

Subscriber = Callable[[Event], None]


def wants_tokens(subscriber: Subscriber) -> bool:
    """Whether ``subscriber`` needs ``TokensStreamed``. One that sets ``wants_tokens = False``
    (the history, plain lines) lets the calls skip streaming; any other callable gets them."""
    return bool(getattr(subscriber, "wants_tokens", True))
