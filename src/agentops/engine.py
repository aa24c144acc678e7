"""The scheduler: start each agent the moment its dependency condition is decided.

There are no batches or levels. When an agent settles, each dependent's count
of unsettled dependencies drops; at zero its condition is evaluated over the
succeeded set and it either starts or is skipped. A semaphore caps calls in
flight (never held while waiting on dependencies or backing off, so it cannot
deadlock). Every attempt reserves its worst-case cost first (``budget``).

The engine imports neither storage nor the terminal UI: it emits ``events``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .budget import Budget, Reservation, input_token_bound
from .errors import CostCapError, MalformedResponseError, ProviderError, ProviderTimeoutError
from .events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    Event,
    RunStatus,
    Subscriber,
    TokensStreamed,
    Usage,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
)
from .executor import Executor, InProcessExecutor
from .graph import WorkflowGraph, condition_holds, unmet_reason
from .messages import ChatRequest
from .pricing import PriceBook
from .providers.base import Provider, Route
from .retry import RetryPolicy
from .spec import Agent, Workflow
from .templates import build_messages, prompt_text

logger = logging.getLogger("agentops")

COST_CAP_REASON = "cost cap"


@dataclass
class RunOptions:
    """Everything a run needs beside the workflow; built by ``api``."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    source_path: str | None = None
    reused: Mapping[str, AgentResult] = field(default_factory=dict)
    resumed_from: int | None = None
    spent_before: float = 0.0  # cost already spent by the runs this one resumes
    cost_cap: float | None = None  # None: the workflow's policy


class Engine:
    """Runs one workflow once. Use ``await Engine(...).run()``; ``stop()`` ends it early."""

    def __init__(
        self,
        workflow: Workflow,
        *,
        routes: Mapping[str, Route],
        providers: Callable[[Route], Provider],
        prices: PriceBook,
        options: RunOptions | None = None,
        subscribers: Iterable[Subscriber] = (),
        executor: Executor | None = None,
    ) -> None:
        self.workflow = workflow
        self.graph = WorkflowGraph(workflow)
        self.routes = routes
        self.providers = providers
        self.prices = prices
        self.options = options or RunOptions()
        self.subscribers = list(subscribers)
        self.executor = executor or InProcessExecutor()
        policies = workflow.policies
        cap = self.options.cost_cap if self.options.cost_cap is not None else policies.cost_cap
        self.budget = Budget(cap, spent=self.options.spent_before)
        self.results: dict[str, AgentResult] = {}
        self._succeeded: set[str] = set()
        self._agents = {agent.name: agent for agent in workflow.agents}
        self._remaining = {name: len(deps) for name, deps in self.graph.dependencies.items()}
        self._task_group: asyncio.TaskGroup | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._stop_reason: str | None = None
        self._stop_status = RunStatus.INTERRUPTED
        self._warned_models: set[str] = set()
        self._rng = random.Random()
        self._slots = asyncio.Semaphore(policies.max_concurrency)

    # --- public ---------------------------------------------------------------

    def check_prices(self) -> None:
        """Under a cost cap every model must have a price, or the cap could not be kept."""
        if self.budget.cap is None:
            return
        unknown = sorted(
            {
                f"{self.routes[a.name].provider}:{self.routes[a.name].model}"
                for a in self.workflow.agents
                if a.name not in self.options.reused and not self.prices.is_known(self.routes[a.name])
            }
        )
        if unknown:
            first = unknown[0].split(":", 1)[1]
            raise CostCapError(
                f"no known price for {', '.join(unknown)}, so cost_cap "
                f"${self.budget.cap:g} cannot be guaranteed; add it under prices: "
                f"(e.g. prices: {{{first}: {{input: 0.5, output: 1.5}}}} in USD per million tokens) "
                "or remove cost_cap"
            )

    def stop(self, reason: str, status: RunStatus = RunStatus.INTERRUPTED) -> None:
        """End the run early: in-flight calls are cancelled and recorded as such."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_status = status
        if self._main_task is not None and not self._main_task.done():
            self._main_task.cancel()

    async def run(self) -> WorkflowResult:
        self.check_prices()
        self._main_task = asyncio.current_task()
        started_at = time.time()
        self._emit(
            WorkflowStarted(
                workflow=self.workflow,
                source=self.options.source,
                source_path=self.options.source_path,
                inputs=dict(self.options.inputs),
                started_at=started_at,
                resumed_from=self.options.resumed_from,
                reused=dict(self.options.reused),
                cost_cap=self.budget.cap,
                spent_before=self.options.spent_before,
            )
        )
        timeout = self.workflow.policies.timeout
        timer = (
            asyncio.get_running_loop().call_later(
                timeout, self.stop, f"run timed out after {timeout:g}s", RunStatus.FAILED
            )
            if timeout
            else None
        )
        try:
            async with asyncio.TaskGroup() as group:
                self._task_group = group
                ready: deque[str] = deque()
                reused = [name for name in self.options.reused if name in self._remaining]
                # All reused results first: releasing one must not queue another reused agent.
                for name in reused:
                    self.results[name] = self.options.reused[name]
                    self._succeeded.add(name)
                for name in reused:
                    self._release_dependents(name, ready)
                # Agents released by reused ones are already queued: queue each only once.
                queued = set(ready)
                ready.extend(
                    n for n, count in self._remaining.items()
                    if count == 0 and n not in self.results and n not in queued
                )
                self._decide(ready)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self._stop_reason is None:
                self._stop_reason = "cancelled"
        finally:
            if timer is not None:
                timer.cancel()
        for name in self.graph.names:
            if name not in self.results:
                self._settle(self._new_result(name, AgentStatus.CANCELLED, error=self._stop_reason), None)
        result = WorkflowResult(
            workflow=self.workflow.name,
            status=self._final_status(),
            agents={name: self.results[name] for name in self.graph.names},
            started_at=started_at,
            finished_at=time.time(),
            cost_cap=self.budget.cap,
            spent_before=self.options.spent_before,
        )
        self._emit(WorkflowFinished(result))
        return result

    # --- scheduling ----------------------------------------------------------------

    def _final_status(self) -> RunStatus:
        if self._stop_reason is not None:
            return self._stop_status
        if all(r.status is AgentStatus.SUCCEEDED for r in self.results.values()):
            return RunStatus.SUCCEEDED
        return RunStatus.FAILED

    def _release_dependents(self, name: str, ready: deque[str]) -> None:
        for user in self.graph.dependents[name]:
            self._remaining[user] -= 1
            if self._remaining[user] == 0 and user not in self.results:
                ready.append(user)

    def _decide(self, ready: deque[str]) -> None:
        """Start or skip every agent whose dependencies have all settled.

        A loop, not recursion: a long chain of skips must not hit the stack limit.
        """
        while ready:
            name = ready.popleft()
            condition = self.graph.conditions[name]
            if self._stop_reason is not None:
                continue
            if condition_holds(condition, self._succeeded):
                assert self._task_group is not None
                self._task_group.create_task(self._run_agent(name), name=f"agent:{name}")
                continue
            statuses = {n: self.results[n].status.value for n in self.graph.dependencies[name]}
            skipped = self._new_result(name, AgentStatus.SKIPPED, error=unmet_reason(condition, statuses))
            self._settle(skipped, ready)

    def _settle(self, result: AgentResult, ready: deque[str] | None) -> None:
        result.finished_at = result.finished_at or time.time()
        self.results[result.name] = result
        if result.status is AgentStatus.SUCCEEDED:
            self._succeeded.add(result.name)
        self._emit(AgentFinished(result))
        if ready is not None:
            self._release_dependents(result.name, ready)

    def _settle_and_continue(self, result: AgentResult) -> None:
        ready: deque[str] = deque()
        self._settle(result, ready)
        self._decide(ready)

    def _new_result(self, name: str, status: AgentStatus, **fields: Any) -> AgentResult:
        route = self.routes[name]
        return AgentResult(name=name, status=status, model=route.model, provider=route.provider, **fields)

    # --- one agent ---------------------------------------------------------------------

    async def _run_agent(self, name: str) -> None:
        agent = self._agents[name]
        route = self.routes[name]
        upstream = {
            dep: self.results[dep].output or ""
            for dep in sorted(self.graph.dependencies[name])
            if self.results[dep].status is AgentStatus.SUCCEEDED
        }
        messages = build_messages(agent, upstream, self.options.inputs)
        result = self._new_result(name, AgentStatus.RUNNING, prompt=prompt_text(messages))
        request = ChatRequest(
            model=route.model,
            messages=messages,
            max_tokens=self.workflow.effective_max_tokens(agent),
            temperature=self.workflow.effective_temperature(agent),
            timeout=agent.timeout,
            agent=agent.name,
        )
        try:
            await self._attempt_until_settled(agent, route, request, result)
        except asyncio.CancelledError:
            result.status = AgentStatus.CANCELLED
            result.error = self._stop_reason or "cancelled"
            self._settle(result, None)
            raise
        self._settle_and_continue(result)

    async def _attempt_until_settled(
        self, agent: Agent, route: Route, request: ChatRequest, result: AgentResult
    ) -> None:
        policy = RetryPolicy(
            retries=self.workflow.effective_retries(agent),
            backoff=self.workflow.policies.backoff,
            rng=self._rng,
        )
        provider = self.providers(route)
        worst_case = self._cost_or_zero(route, Usage(input_token_bound(request), request.max_tokens))
        number = 0
        while True:
            number += 1
            reservation = await self.budget.reserve(worst_case)
            if reservation is None:
                result.status = AgentStatus.SKIPPED
                result.error = COST_CAP_REASON if number == 1 else f"{COST_CAP_REASON} (after {number - 1} attempts)"
                return
            if number == 1:  # started only once its first call fits under the cost cap
                result.started_at = time.time()
                self._emit(AgentStarted(agent.name, route.model, route.provider, result.prompt or "", result.started_at))
            attempt, error, text = await self._attempt(agent, route, provider, request, reservation, number, result)
            if error is None:
                result.status = AgentStatus.SUCCEEDED
                result.output = text
                self._emit(AttemptSucceeded(agent.name, attempt))
                return
            retry = policy.should_retry(error, number) and self._stop_reason is None
            delay = policy.delay(error, number) if retry else None
            self._emit(AttemptFailed(agent.name, attempt, will_retry=retry, retry_in=delay))
            if not retry:
                result.status = AgentStatus.FAILED
                result.error = attempt.error
                return
            assert delay is not None
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        agent: Agent,
        route: Route,
        provider: Provider,
        request: ChatRequest,
        reservation: Reservation,
        number: int,
        result: AgentResult,
    ) -> tuple[Attempt, ProviderError | None, str | None]:
        """One call, holding a concurrency slot and a cost reservation; always settles both
        and adds the attempt to ``result`` (a cancelled one too: it may have been billed)."""
        self._emit(AttemptStarted(agent.name, number))
        streamed: list[str] = []

        def on_text(text: str) -> None:
            streamed.append(text)
            self._emit(TokensStreamed(agent.name, text))

        started = time.time()
        clock = time.monotonic()
        error: ProviderError | None = None
        usage = Usage()
        text: str | None = None
        try:
            async with self._slots:
                clock = time.monotonic()
                started = time.time()
                if agent.timeout is None:  # no timeout scope: it costs a task lookup per call
                    response = await self.executor.call(provider, request, on_text)
                else:
                    async with asyncio.timeout(agent.timeout):
                        response = await self.executor.call(provider, request, on_text)
                usage = response.usage
                text = response.text
        except TimeoutError:
            error = ProviderTimeoutError(f"no answer within {agent.timeout:g}s (the agent's timeout)")
        except ProviderError as caught:
            error = caught
        except asyncio.CancelledError:
            usage = self._partial_usage(request, streamed)
            cancelled = self._stop_reason or "cancelled"
            await self._close_attempt(result, route, reservation, number, started, clock, usage, "cancelled", cancelled)
            raise
        except Exception as caught:  # a provider bug must fail one agent, not the run
            logger.exception("provider %s raised an unexpected error", route.provider)
            error = MalformedResponseError(f"{type(caught).__name__}: {caught}")
        if error is not None:
            usage = self._partial_usage(request, streamed)
        status = "succeeded" if error is None else "failed"
        attempt = await self._close_attempt(result, route, reservation, number, started, clock, usage, status, error)
        return attempt, error, text

    async def _close_attempt(
        self,
        result: AgentResult,
        route: Route,
        reservation: Reservation,
        number: int,
        started: float,
        clock: float,
        usage: Usage,
        status: str,
        error: ProviderError | str | None,
    ) -> Attempt:
        """Settle the reservation to what the attempt cost, and add the attempt to ``result``."""
        duration = time.monotonic() - clock
        cost = await self._settle_cost(route, reservation, usage)
        message: str | None = error if not isinstance(error, ProviderError) else f"{type(error).__name__}: {error}"
        error_type = type(error).__name__ if isinstance(error, ProviderError) else None
        http_status = error.status if isinstance(error, ProviderError) else None
        attempt = Attempt(
            number=number,
            status=status,
            started_at=started,
            duration=duration,
            usage=usage,
            cost=cost,
            error=message,
            error_type=error_type,
            http_status=http_status,
        )
        result.attempts.append(attempt)
        result.usage = result.usage + attempt.usage
        result.cost = None if result.cost is None or attempt.cost is None else result.cost + attempt.cost
        return attempt

    @staticmethod
    def _partial_usage(request: ChatRequest, streamed: list[str]) -> Usage:
        """A failed attempt that streamed text was probably billed: estimate it."""
        if not streamed:
            return Usage()
        text_bytes = sum(len(piece.encode("utf-8")) for piece in streamed)
        return Usage(input_token_bound(request) // 4, max(1, text_bytes // 4), estimated=True)

    async def _settle_cost(self, route: Route, reservation: Reservation, usage: Usage) -> float | None:
        cost = self.prices.cost(route, usage)
        if cost is None and route.model not in self._warned_models:
            self._warned_models.add(route.model)
            self._emit(
                CostWarning(
                    f"no known price for model {route.model!r} ({route.provider}): its cost is "
                    "recorded as unknown; add it under prices: in the workflow",
                )
            )
        if cost is not None and cost > reservation.amount and self.budget.cap is not None:
            logger.warning(
                "call on %s cost $%.6f, more than its reserved worst case $%.6f",
                route.model, cost, reservation.amount,
            )
        await self.budget.settle(reservation, cost or 0.0)
        return cost

    def _cost_or_zero(self, route: Route, usage: Usage) -> float:
        return self.prices.cost(route, usage) or 0.0

    # --- events ----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must not take the run down with it
                logger.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)
