"""One agent's run: its turns, each turn's attempts, their cost reservations, tool calls and re-asks.

The scheduler (``engine``) decides when an agent runs; this unit runs it. A run
is a loop of turns (the ``ChainResponse`` shape of simonw/llm): call the model;
if it asks for tools, run them (``tools.AgentTools``), append their results and
call again; its first answer without a tool call is the agent's output. A run
without tools is one turn. With an output schema (``structured.OutputContract``)
that answer must validate: one that does not is re-asked, with the errors, as a
turn of its own, up to ``output.retries`` times; then the agent fails naming the
first error.

A turn whose request is in the response cache (``RunContext.cache``) is answered from it
before anything is reserved: an attempt marked cached, the original's tokens, $0, no slot.
An answer the run accepts (tool calls, a plain answer, one that follows the schema) is
stored when the cache writes; a rejected one never is, so a re-ask is not served it again.

Each turn is one model call made through attempts: every attempt reserves its
worst case with the budget first (the prompt grows each turn, so the bound
does too), holds a concurrency slot only while it calls, and is settled to
what it cost, cancelled or not. Retries belong to the turn: a 429 on turn 3
retries turn 3. The call itself goes through the run's ``executor.Executor``,
as data (the route and the request): the run never holds a provider.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from agentops.errors import (
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    describe_exception,
)
from agentops.runtime.budget import COST_CAP_REASON, Budget, Reservation, input_token_bound
from agentops.runtime.cache import (
    CachedAnswer,
    CallKeys,
    ReplayMismatchError,
    RequestKey,
    ResponseCache,
)
from agentops.runtime.events import (
    AgentResult,
    AgentStarted,
    AgentStatus,
    AnswerRejected,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    Event,
    SkipCause,
    TokensStreamed,
    ToolCallRecord,
    Usage,
)
from agentops.runtime.executor import Executor
from agentops.runtime.limits import CallLimits
from agentops.runtime.messages import (
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    ToolDefinition,
    assistant,
    user,
    valid_text,
)
from agentops.runtime.pricing import PriceBook
from agentops.runtime.provider import Route, TextCallback
from agentops.runtime.retry import MAX_RETRY_AFTER, RetryPolicy
from agentops.runtime.structured import OutputContract
from agentops.workflow.spec import Backoff

logger = logging.getLogger("agentops")


@dataclass
class RunContext:
    """What every agent's run in one workflow run shares; owned by the engine."""

    limits: CallLimits  # the slots capping model calls in flight, the budget, provider pauses
    prices: PriceBook
    executor: Executor
    emit: Callable[[Event], None]
    backoff: Backoff
    stop_reason: Callable[[], str | None]  # why the run is stopping; None while it is not
    scrub: Callable[[str], str] = str  # masks the run's secrets in text that is shown or stored
    rng: random.Random = field(default_factory=random.Random)
    warned_models: set[str] = field(default_factory=set)
    keys: CallKeys | None = None  # names each call's request (recorded; the cache's key)
    cache: ResponseCache | None = None  # answers calls before they are made (cache, replay)
    # False: nothing subscribes to ``emit``, so the events every call makes are not even built.
    listening: bool = True

    @property
    def budget(self) -> Budget:
        return self.limits.budget


@dataclass(frozen=True)
class ToolOutcome:
    """The results of one turn's tool calls, as messages for the next turn, in call order.

    ``failure`` is set when a tool whose errors fail the agent (``on_tool_error: fail``) failed.
    """

    messages: tuple[Message, ...]
    failure: str | None = None


class AgentTools(Protocol):
    """What a run needs from the tools of its agent (``tools.runtime`` implements it)."""

    @property
    def definitions(self) -> tuple[ToolDefinition, ...]:
        """The tools as offered to the model."""
        ...

    async def run_calls(self, agent: str, turn: int, calls: Sequence[ToolCall]) -> ToolOutcome: ...


class RunTools(Protocol):
    """The tools of one workflow run, started by whoever assembles the run
    (``tools.runtime.ToolRuntime`` implements it)."""

    def for_agent(
        self, name: str, emit: Callable[[Event], None], records: list[ToolCallRecord]
    ) -> AgentTools | None:
        """The agent's tools (None: it has none); its calls are appended to ``records``."""
        ...

    async def aclose(self) -> list[Event]:
        """Close every server (at most once); the events that say so, for the history."""
        ...


class AgentRun:
    """Runs one agent to a settled ``result`` (succeeded, failed or skipped).

    Cancellation propagates to the caller after the attempt in flight is
    recorded; the caller settles the result as cancelled.
    """

    # 10,000 agents ready at once means 10,000 of these waiting for a slot: no per-instance dict.
    __slots__ = (
        "_attempts",
        "context",
        "max_turns",
        "name",
        "output",
        "request",
        "result",
        "retries",
        "route",
        "tools",
    )

    def __init__(
        self,
        context: RunContext,
        route: Route,
        request: ChatRequest,
        result: AgentResult,
        retries: int,
        max_turns: int = 1,
        tools: AgentTools | None = None,
        output: OutputContract | None = None,
    ) -> None:
        self.context = context
        self.route = route
        self.request = request
        self.result = result
        self.name = result.name
        self.max_turns = max_turns
        self.tools = tools
        self.output = output  # structured output: answers are validated, and re-asked when invalid
        self.retries = retries
        # A run continued elsewhere (its worker lost) numbers on, and is not started twice.
        self._attempts = len(result.attempts)

    @property
    def policy(self) -> RetryPolicy:
        """Whether and when a failed attempt is retried (made only once one has failed)."""
        context = self.context
        return RetryPolicy(retries=self.retries, backoff=context.backoff, rng=context.rng)

    async def run(self) -> None:
        messages = self.request.messages  # grows by a tuple per turn: most runs take one
        request = self.request
        tool_turns = reasks = turn = 0
        while True:
            turn += 1
            if turn > 1:
                request = replace(self.request, messages=messages)
            keys = self.context.keys
            key = keys.key(self.route, request) if keys is not None else None
            response = await self._turn(request, turn, reasks, key)
            if response is None:
                return  # settled: failed, or skipped by the cost cap
            if response.tool_calls and self.tools is not None:
                self._keep(key, response)
                tool_turns += 1
                if tool_turns == self.max_turns:
                    self.result.status = AgentStatus.FAILED
                    self.result.error = f"stopped after {turn} turns (max_turns)"
                    return
                messages += (assistant(response.text, response.tool_calls),)
                outcome = await self.tools.run_calls(self.name, turn, response.tool_calls)
                messages += outcome.messages
                if outcome.failure is not None:  # a tool with on_tool_error: fail
                    self.result.status = AgentStatus.FAILED
                    self.result.error = outcome.failure
                    return
                continue
            if self.output is None:
                self._keep(key, response)
                self._succeed(response.text)
                return
            verdict = self.output.check(response, request.max_tokens)
            if verdict.valid:
                self._keep(key, response)
                self._succeed(verdict.text or "", verdict.value)
                return
            # An answer that does not follow the schema is re-asked, as a turn of its own
            # (recorded, and reserving its own worst case), until the re-asks run out.
            attempt = self.result.attempts[-1]
            attempt.validation_error = verdict.error
            reask = reasks < self.output.retries and self.context.stop_reason() is None
            self.context.emit(AnswerRejected(self.name, attempt, will_reask=reask))
            if not reask:
                self.result.status = AgentStatus.FAILED
                self.result.output = response.text
                after = f" after {reasks} re-ask{'s' if reasks != 1 else ''}" if reasks else ""
                self.result.error = (
                    f"the answer does not follow the output schema{after}: {verdict.error}"
                )
                return
            reasks += 1
            messages += (assistant(response.text), user(self.output.reask_message(verdict)))

    def _keep(self, key: RequestKey | None, response: ChatResponse) -> None:
        """Store an accepted answer in the cache, unless it came from there."""
        cache, attempt = self.context.cache, self.result.attempts[-1]
        if cache is not None and key is not None and cache.writes and not attempt.cached:
            cache.store(self.request.agent or self.name, key, response, attempt.cost)

    def _succeed(self, output: str, value: Any = None) -> None:
        self.result.status = AgentStatus.SUCCEEDED
        self.result.output = output
        self.result.value = value

    # --- one turn: attempts until one succeeds or retrying cannot help ----------------------

    async def _turn(
        self, request: ChatRequest, turn: int, reasks: int = 0, key: RequestKey | None = None
    ) -> ChatResponse | None:
        context, result = self.context, self.result
        budget = context.limits.budget
        cache = context.cache
        if cache is not None and key is not None and cache.reads:
            try:
                hit = cache.lookup(request.agent or self.name, key)
            except ReplayMismatchError as mismatch:
                self._refuse(request, turn, key, mismatch)
                return None
            if hit is not None:
                return self._serve(request, turn, key, hit)
        # Without a cap nothing is compared with the reservation: skip pricing the worst case.
        worst_case = (
            0.0
            if not budget.capped
            else self._cost_or_zero(Usage(input_token_bound(request), request.max_tokens))
        )
        tries = 0
        while True:
            tries += 1
            reservation = await budget.reserve(worst_case)
            if reservation is None:
                result.status = AgentStatus.SKIPPED
                result.skip_cause = SkipCause.COST_CAP
                result.error = _cost_cap_reason(budget.refusal, turn, tries, reasks)
                return None
            # started only once its first call fits under the cost cap
            number = self._next_attempt(request, turn)
            attempt, error, response = await self._attempt(request, reservation, number, turn, key)
            if error is None:
                if context.listening:
                    context.emit(AttemptSucceeded(self.name, attempt, response=response))
                return response
            policy = self.policy
            retry = policy.should_retry(error, tries) and context.stop_reason() is None
            delay = policy.delay(error, tries) if retry else None
            context.emit(AttemptFailed(self.name, attempt, will_retry=retry, retry_in=delay))
            if not retry:
                result.status = AgentStatus.FAILED
                result.error = attempt.error
                return None
            assert delay is not None
            await asyncio.sleep(delay)

    def _next_attempt(self, request: ChatRequest, turn: int) -> int:
        """Number the next attempt and say it started (the agent too, before its first)."""
        self._attempts += 1
        context, result, route = self.context, self.result, self.route
        first = self._attempts == 1
        if first:
            result.started_at = started = time.time()
        if context.listening:
            if first:
                prompt = result.prompt or ""
                context.emit(AgentStarted(self.name, route.model, route.provider, prompt, started))
            context.emit(AttemptStarted(self.name, self._attempts, turn, request=request))
        return self._attempts

    def _serve(
        self, request: ChatRequest, turn: int, key: RequestKey, hit: CachedAnswer
    ) -> ChatResponse:
        """A turn answered from the cache: nothing reserved or called, recorded as cached."""
        number = self._next_attempt(request, turn)
        response = hit.response
        if request.stream and response.text:  # a streaming view shows the whole answer at once
            self.context.emit(TokensStreamed(self.name, response.text))
        attempt = Attempt(
            number=number,
            status="succeeded",
            started_at=time.time(),
            duration=0.0,
            usage=response.usage,
            cost=0.0,
            turn=turn,
            cached=True,
            saved=hit.cost,
            request_key=key.key,
            request_digest=key.digest,
            response=response,
        )
        self.result.add_attempt(attempt)
        self.context.emit(AttemptSucceeded(self.name, attempt, response=response))
        return response

    def _refuse(
        self, request: ChatRequest, turn: int, key: RequestKey, mismatch: ReplayMismatchError
    ) -> None:
        """A call the cache must answer and cannot (a replay): the agent fails, nothing called."""
        number = self._next_attempt(request, turn)
        attempt = Attempt(
            number=number,
            status="failed",
            started_at=time.time(),
            duration=0.0,
            error=f"{type(mismatch).__name__}: {mismatch}",
            error_type=type(mismatch).__name__,
            turn=turn,
            request_key=key.key,
            request_digest=key.digest,
        )
        self.result.add_attempt(attempt)
        self.context.emit(AttemptFailed(self.name, attempt, will_retry=False, retry_in=None))
        self.result.status = AgentStatus.FAILED
        self.result.error = attempt.error

    async def _attempt(
        self,
        request: ChatRequest,
        reservation: Reservation,
        number: int,
        turn: int,
        key: RequestKey | None = None,
    ) -> tuple[Attempt, ProviderError | None, ChatResponse | None]:
        """One call, holding a concurrency slot and a cost reservation; always settles both
        and adds the attempt to the result (a cancelled one too: it may have been billed)."""
        context = self.context
        streamed: list[str] = []
        limits = context.limits
        on_text = self._streamer(streamed) if request.stream else streamed.append
        started = time.time()
        clock = time.monotonic()
        error: ProviderError | None = None
        response: ChatResponse | None = None
        timeout = request.timeout
        route = self.route
        try:
            if not limits.try_acquire(route.provider):
                await limits.acquire(route.provider)  # waits out a pause a 429 elsewhere began
                clock = time.monotonic()  # the call starts now, not when it began to wait
                started = time.time()
            try:
                if timeout is None:  # no timeout scope: it costs a task lookup per call
                    response = await context.executor.call(route, request, on_text)
                else:
                    async with asyncio.timeout(timeout):
                        response = await context.executor.call(route, request, on_text)
            finally:
                limits.release()
            response = response.with_valid_text()
        except TimeoutError:
            error = ProviderTimeoutError(f"no answer within {timeout:g}s (the agent's timeout)")
        except ProviderError as caught:
            error = caught
        except asyncio.CancelledError:
            usage = _partial_usage(request, streamed)
            cancelled = context.stop_reason() or "cancelled"
            attempt = self._record_attempt(
                reservation, number, turn, started, clock, usage, "cancelled", cancelled, key
            )
            await context.budget.settle(reservation, attempt.cost or 0.0)
            raise
        except (
            BaseException
        ) as caught:  # a provider bug (or SystemExit in its code) fails one agent, not the run
            logger.debug(
                "provider %s raised an unexpected error", self.route.provider, exc_info=caught
            )
            error = MalformedResponseError(
                context.scrub(f"the provider raised {describe_exception(caught)}")
            )
        if error is None and response is not None:
            usage = response.usage
        else:
            usage = _partial_usage(request, streamed)
            response = None
        if isinstance(error, RateLimitError) and error.retry_after:
            # Every call to this provider waits, not just this attempt's retry: the limit is theirs.
            limits.pause(self.route.provider, min(error.retry_after, MAX_RETRY_AFTER))
        status = "succeeded" if error is None else "failed"
        attempt = self._record_attempt(
            reservation, number, turn, started, clock, usage, status, error, key, response
        )
        await context.budget.settle(reservation, attempt.cost or 0.0)
        return attempt, error, response

    def _streamer(self, streamed: list[str]) -> TextCallback:
        """What a streamed call's text goes to: kept for the attempt, shown as it comes."""
        context, name = self.context, self.name

        def on_text(text: str) -> None:
            text = valid_text(text)
            streamed.append(text)
            context.emit(TokensStreamed(name, text))

        return on_text

    def _record_attempt(
        self,
        reservation: Reservation,
        number: int,
        turn: int,
        started: float,
        clock: float,
        usage: Usage,
        status: str,
        error: ProviderError | str | None,
        key: RequestKey | None = None,
        response: ChatResponse | None = None,
    ) -> Attempt:
        """Add the attempt to the result, with what it cost (its caller then settles the
        reservation to that)."""
        duration = time.monotonic() - clock
        cost = self._cost_of(reservation, usage)
        attempt = Attempt(number, status, started, duration, usage, cost)
        attempt.turn = turn  # set, not passed by keyword: that would build a dict per call
        if isinstance(error, ProviderError):
            attempt.error = f"{type(error).__name__}: {error}"
            attempt.error_type = type(error).__name__
            attempt.http_status = error.status
        elif error is not None:
            attempt.error = error
        if key is not None:
            attempt.request_key = key.key
            attempt.request_digest = key.digest
            attempt.response = response  # kept for replays, which match by key
        self.result.add_attempt(attempt)
        return attempt

    def _cost_of(self, reservation: Reservation, usage: Usage) -> float | None:
        """What an attempt cost (None: its model has no known price, which is said once)."""
        context, route = self.context, self.route
        cost = context.prices.cost(route, usage)
        if cost is None and route.model not in context.warned_models:
            context.warned_models.add(route.model)
            context.emit(
                CostWarning(
                    f"no known price for model {route.model!r} ({route.provider}): its cost is "
                    "recorded as unknown; add it under prices: in the workflow",
                )
            )
        if cost is not None and cost > reservation.amount and context.budget.capped:
            logger.warning(
                "call on %s cost $%.6f, more than its reserved worst case $%.6f",
                route.model,
                cost,
                reservation.amount,
            )
        return cost

    def _cost_or_zero(self, usage: Usage) -> float:
        return self.context.prices.cost(self.route, usage) or 0.0


class AgentRunner(Protocol):
    """Where one agent's run is carried out: ``run`` drives ``agent_run`` to a settled result.

    The engine decides when an agent runs and builds its ``AgentRun``; a runner carries it
    out. ``InProcessAgentRunner`` (the default) runs it on this event loop. Another runner
    may run it elsewhere (a Ray worker: ``agentops.cluster``) from what the run holds as
    data (its route, request, result, retries, turns, output contract and whether it has
    tools), emitting its events through ``agent_run.context.emit`` and leaving its outcome
    in ``agent_run.result``, as ``AgentRun.run`` does; cancelled, it raises
    ``CancelledError`` once the attempt in flight is recorded.
    """

    async def run(self, agent_run: AgentRun) -> None: ...


class InProcessAgentRunner:
    """Runs each agent's run here, on the engine's event loop."""

    __slots__ = ()

    def run(self, agent_run: AgentRun) -> Coroutine[Any, Any, None]:
        # The run's own coroutine, awaited by the engine: no frame of this one in between.
        return agent_run.run()


def _cost_cap_reason(refusal: str, turn: int, tries: int, reasks: int = 0) -> str:
    """``refusal``: "cost cap", or the named budget that had no room ("budget research")."""
    if reasks:
        return (
            f"{refusal} (before re-ask {reasks}: the last answer did not follow the output schema)"
        )
    if turn > 1:
        return f"{refusal} (after {turn - 1} turns)"
    return refusal if tries == 1 else f"{refusal} (after {tries - 1} attempts)"


def _partial_usage(request: ChatRequest, streamed: list[str]) -> Usage:
    """A failed attempt that streamed text was probably billed: estimate it."""
    if not streamed:
        return Usage()
    # A call not streamed to a view keeps its pieces as they came: a lone surrogate is counted.
    text_bytes = sum(len(piece.encode("utf-8", "surrogatepass")) for piece in streamed)
    return Usage(input_token_bound(request) // 4, max(1, text_bytes // 4), estimated=True)


__all__ = [
    "COST_CAP_REASON",
    "AgentRun",
    "AgentRunner",
    "AgentTools",
    "InProcessAgentRunner",
    "RunContext",
    "RunTools",
    "ToolOutcome",
]
