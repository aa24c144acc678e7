"""What the calls of a workflow run share, or of every workflow run in a batch: concurrency
slots, the cost budget, and pauses of a provider that answered 429 with Retry-After.

``CallLimits`` is the interface the runtime depends on (``engine``, ``agent_run``);
``InProcessCallLimits`` implements it with asyncio objects for one process. Limits
shared across processes (slots and pauses in an actor or the store, beside a shared
``budget.Budget``) implement the same protocol.

A single workflow run makes its own (``InProcessCallLimits.create``); a batch makes one
and hands it to every row's engine, so ``policies.max_concurrency`` and the cost cap
hold for the whole batch, and a rate limit seen by one row pauses that provider for
all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agentops.runtime.budget import BothBudgets, Budget, InProcessBudget


@dataclass
class ProviderPauses:
    """Providers that asked for a pause: new calls to them wait until it has passed."""

    count: int = 0  # pauses begun (a pause extended by a later 429 counts once)
    seconds: float = 0.0  # total time paused, overlapping pauses counted once
    _until: dict[str, float] = field(default_factory=dict)  # provider -> time.monotonic()

    @property
    def until(self) -> Mapping[str, float]:
        """When each provider that asked for a pause may be called again (``time.monotonic()``)."""
        return self._until

    def pause(self, provider: str, seconds: float) -> None:
        now = time.monotonic()
        until = now + seconds
        current = self._until.get(provider, 0.0)
        if until <= current:
            return
        if current > now:  # extends a pause under way
            self.seconds += until - current
        else:
            self.count += 1
            self.seconds += seconds
        self._until[provider] = until

    def blocks(self, provider: str) -> bool:
        """Whether a pause on ``provider`` has not passed yet."""
        if not self._until:  # the common case: nothing paused, no clock read
            return False
        return self._until.get(provider, 0.0) > time.monotonic()

    async def wait(self, provider: str) -> None:
        if not self._until:  # the common case: nothing paused, no clock read
            return
        while (delay := self._until.get(provider, 0.0) - time.monotonic()) > 0:
            await asyncio.sleep(delay)


class Slots:
    """``count`` slots, handed out in the order they were asked for, as ``asyncio.Semaphore``
    does; but a free slot is taken by a plain call (``try_take``), with no coroutine made:
    every model call takes one."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        return self._free

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one before us."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting for one to be given back if none is free."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # ``give`` hands its slot straight to the first waiter
        except asyncio.CancelledError:
            if waiter.cancelled():  # still waiting: no slot was handed over
                self._waiters.remove(waiter)
            else:  # handed one as it was cancelled: pass it on
                self.give()
            raise

    def give(self) -> None:
        """Give a slot back: to the first waiter, else to the free ones."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class CallLimits(Protocol):
    """The slots, pauses and budget the calls of one workflow run (or one batch) share.

    - ``acquire(provider)`` waits until a call to ``provider`` may start (no pause
      on that provider, a concurrency slot free), then holds a slot;
      ``try_acquire(provider)`` holds one only if that needs no wait, and says whether it
      did (every call tries it first: most need no wait, and then no coroutine is made);
      ``release()`` gives it back once the call is over, however it ended. A slot
      is held only while calling: never while waiting on dependencies, for the
      budget, or while backing off, so holding one cannot deadlock.
    - ``pause(provider, seconds)``: the provider answered 429 with Retry-After;
      calls to it that have not started wait until the pause has passed.
    - ``budget``: the cost budget (``budget.Budget``): reserve, then settle.
    - ``in_flight``: calls holding a slot now, for progress displays.
    """

    @property
    def budget(self) -> Budget: ...

    @property
    def in_flight(self) -> int: ...

    async def acquire(self, provider: str) -> None: ...

    def try_acquire(self, provider: str) -> bool: ...

    def release(self) -> None: ...

    def pause(self, provider: str, seconds: float) -> None: ...


@dataclass
class InProcessCallLimits:
    """The ``CallLimits`` of one process: ``Slots``, an ``InProcessBudget``, ``ProviderPauses``."""

    slots: Slots
    budget: Budget
    pauses: ProviderPauses = field(default_factory=ProviderPauses)
    in_flight: int = 0

    @classmethod
    def create(
        cls,
        max_concurrency: int,
        cap: float | None,
        spent: float = 0.0,
        shared: Budget | None = None,
    ) -> InProcessCallLimits:
        """``shared``: a budget other runs draw on too (a named budget), held beside the cap."""
        budget: Budget = InProcessBudget(cap, spent=spent)
        if shared is not None:
            budget = BothBudgets(budget, shared)
        return cls(Slots(max_concurrency), budget)

    def try_acquire(self, provider: str) -> bool:
        if self.pauses.count and self.pauses.blocks(provider):
            return False
        if not self.slots.try_take():
            return False
        self.in_flight += 1
        return True

    async def acquire(self, provider: str) -> None:
        if self.pauses.count:  # some provider was paused once: it may still be
            await self.pauses.wait(provider)
        await self.slots.take()
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        self.slots.give()

    def pause(self, provider: str, seconds: float) -> None:
        self.pauses.pause(provider, seconds)


__all__ = ["CallLimits", "InProcessCallLimits", "ProviderPauses", "Slots"]
