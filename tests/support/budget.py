"""Processes drawing on one named budget at once, for the budget tests and benchmarks."""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from agentops.store.budgets import StoreBudget
from agentops.store.stores import open_database


def draw(db: str, name: str, calls: int, seed: int, go: Any = None) -> dict[str, Any]:
    """``calls`` attempts, 8 at a time: reserve a worst case, "call", settle at most that."""
    if go is not None:
        go.wait()
    rng = random.Random(seed)

    async def attempt(
        budget: StoreBudget, slots: asyncio.Semaphore, outcome: dict[str, Any]
    ) -> None:
        worst = round(rng.uniform(0.01, 0.05), 4)
        actual = round(worst * rng.uniform(0.2, 1.0), 6)
        async with slots:
            hold = await budget.reserve(worst)
            if hold is None:
                outcome["refused"] += 1
                return
            await asyncio.sleep(rng.uniform(0, 0.002))
            await budget.settle(hold, actual)
            outcome["granted"] += 1
            outcome["spent"] += actual

    async def main() -> dict[str, Any]:
        outcome: dict[str, Any] = {"granted": 0, "refused": 0, "spent": 0.0}
        with open_database(db) as store:
            budget = StoreBudget(store, name)
            slots = asyncio.Semaphore(8)
            try:
                await asyncio.gather(*(attempt(budget, slots, outcome) for _ in range(calls)))
            finally:
                budget.close()
        return outcome

    return asyncio.run(main())


def hold_and_wait(db: str, name: str, holds: int, amount: float) -> None:
    """Reserve ``holds`` × ``amount``, say so on stdout, then wait to be killed."""

    async def main() -> None:
        with open_database(db) as store:
            budget = StoreBudget(store, name)
            for _ in range(holds):
                assert await budget.reserve(amount) is not None
            print("held", flush=True)
            await asyncio.sleep(600)

    asyncio.run(main())


if __name__ == "__main__":  # python -m tests.support.budget DB NAME HOLDS AMOUNT
    hold_and_wait(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
