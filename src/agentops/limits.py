"""What the calls of a run share, or of every run in a batch: concurrency slots, the cost
budget, and pauses of a provider that answered 429 with Retry-After.

A single run makes its own (``CallLimits.for_workflow``); a batch makes one and hands
it to every row's engine, so ``policies.max_concurrency`` and the cost cap hold for the
whole batch, and a rate limit seen by one row pauses that provider for all of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .budget import Budget


@dataclass
class ProviderPauses:
    """Providers that asked for a pause: new calls to them wait until it has passed."""

    count: int = 0  # pauses begun (a pause extended by a later 429 counts once)
    seconds: float = 0.0  # total time paused, overlapping pauses counted once
    _until: dict[str, float] = field(default_factory=dict)  # provider -> time.monotonic()

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

    async def wait(self, provider: str) -> None:
        if not self._until:  # the common case: nothing paused, no clock read
            return
        while (delay := self._until.get(provider, 0.0) - time.monotonic()) > 0:
            await asyncio.sleep(delay)


@dataclass
class CallLimits:
    slots: asyncio.Semaphore
    budget: Budget
    pauses: ProviderPauses = field(default_factory=ProviderPauses)
    in_flight: int = 0  # calls holding a slot now (for progress displays)

    @classmethod
    def create(cls, max_concurrency: int, cap: float | None, spent: float = 0.0) -> CallLimits:
        return cls(asyncio.Semaphore(max_concurrency), Budget(cap, spent=spent))


__all__ = ["CallLimits", "ProviderPauses"]
