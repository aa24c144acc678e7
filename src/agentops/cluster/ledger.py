"""The cost ledger of a run or a batch on Ray: one actor every worker's calls go through.

``Ledger`` is the actor's body (an async actor: every method runs on its one event loop, so
the ``InProcessBudget``, the semaphore and the ``ProviderPauses`` inside need no lock; every
method is ``async`` for that reason, since Ray runs an async actor's plain methods in other
threads). It
holds what the calls of the whole cluster share: the budget (each attempt reserves its worst
case before its call and settles the actual after, so spend never passes the cap however
many nodes call at once), the ``max_concurrency`` slots and the pauses a 429 asked for.

Every hold is kept under its *holder*, one agent run's task attempt. When the driver learns
that a task's worker or node is gone, it calls ``forfeit(holder)``: the reservations that
task had open are charged at their full reserved amount (the calls may have been billed),
never settled as zero; its slots are given back, and whatever it asks later is refused.

``LedgerLimits`` is the ``CallLimits`` (and ``LedgerBudget`` the ``Budget``) a worker's
agent run uses, one round trip per reserve, acquire and settle (release and pause are sent
without waiting). On the driver the same class is the view the engine, the batch and the
progress bar read: ``spent``, ``in_flight`` and the pauses are the ledger's latest
``Snapshot``, which every answer of the actor carries and the workers send back with their
events, so the driver never asks for them.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from agentops.runtime.budget import InProcessBudget, Reservation
from agentops.runtime.limits import ProviderPauses

# An async actor runs this many calls at once; a call waiting for a slot or for budget holds
# one, so it must exceed the calls that can wait at once (rows open × agents per row).
LEDGER_CONCURRENCY = 100_000


@dataclass(frozen=True)
class Snapshot:
    """The ledger's state after a change; ``version`` orders snapshots (a newer one wins)."""

    version: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    in_flight: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0


@dataclass
class _Holder:
    """What one task attempt holds: its open reservations by id, and its slots."""

    reservations: dict[int, Reservation] = field(default_factory=dict)
    slots: int = 0


class Ledger:
    """The actor's body; see the module docstring. ``spent``: what earlier runs spent (resume)."""

    def __init__(self, cap: float | None, spent: float, max_concurrency: int) -> None:
        self.budget = InProcessBudget(cap, spent=spent)
        self.slots = asyncio.Semaphore(max_concurrency)
        self.pauses = ProviderPauses()
        self.in_flight = 0
        self.version = 0
        self._holders: dict[str, _Holder] = {}
        self._gone: set[str] = set()  # forfeited: anything they ask now is refused
        self._ids = itertools.count(1)
        self._stops: dict[str, asyncio.Future[str]] = {}

    # --- the budget ---------------------------------------------------------------------------

    async def reserve(self, holder: str, amount: float) -> tuple[int | None, Snapshot]:
        """Hold ``amount`` for ``holder`` (waiting as ``Budget.reserve`` does): its id, or None."""
        if holder in self._gone:
            return None, self._state()
        reservation = await self.budget.reserve(amount)
        if reservation is None:
            return None, self._state()
        if holder in self._gone:  # lost while it waited: no call will use this
            await self.budget.settle(reservation, 0.0)
            return None, self._changed()
        number = next(self._ids)
        self._holder(holder).reservations[number] = reservation
        return number, self._changed()

    async def settle(self, holder: str, number: int, actual: float) -> Snapshot:
        """Replace hold ``number`` by what the call cost; a hold already charged stays charged."""
        held = self._holders.get(holder)
        reservation = held.reservations.pop(number, None) if held is not None else None
        if reservation is not None:
            await self.budget.settle(reservation, actual)
        return self._changed()

    async def spend(self, actual: float) -> Snapshot:
        """A call made without a reservation (no cap) cost ``actual``."""
        self.budget.spent += actual
        return self._changed()

    # --- slots and pauses ---------------------------------------------------------------------

    async def acquire(self, holder: str, provider: str) -> Snapshot:
        await self.pauses.wait(provider)
        await self.slots.acquire()
        if holder in self._gone:
            self.slots.release()
            raise LookupError(f"holder {holder} was forfeited")
        self._holder(holder).slots += 1
        self.in_flight += 1
        return self._changed()

    async def release(self, holder: str) -> None:
        held = self._holders.get(holder)
        if held is None or held.slots == 0:  # forfeited: its slots were given back then
            return
        held.slots -= 1
        self._give_back(1)

    async def pause(self, provider: str, seconds: float) -> None:
        self.pauses.pause(provider, seconds)
        self._changed()

    # --- holders ------------------------------------------------------------------------------

    async def forfeit(self, holder: str) -> tuple[list[float], Snapshot]:
        """``holder`` is gone: its open reservations are charged in full (the amounts charged),
        its slots given back, and it is refused from now on."""
        self._gone.add(holder)
        self._resolve_stop(holder, "")
        self._stops.pop(holder, None)
        held = self._holders.pop(holder, None)
        if held is None:
            return [], self._state()
        charged = []
        for reservation in held.reservations.values():
            await self.budget.settle(reservation, reservation.amount)
            charged.append(reservation.amount)
        self._give_back(held.slots)
        return charged, self._changed()

    async def watch(self, holder: str) -> str:
        """Answers when the driver stops ``holder`` (the reason) or it finishes ("")."""
        stop = self._stops.get(holder)
        if stop is None:
            stop = self._stops[holder] = asyncio.get_running_loop().create_future()
        return await stop

    async def stop(self, holder: str, reason: str) -> None:
        """Ask ``holder``'s agent run to stop (its watch answers ``reason``)."""
        self._resolve_stop(holder, reason or "cancelled")

    async def finish(self, holder: str) -> None:
        """``holder`` is done: its watch is answered and its record dropped."""
        self._resolve_stop(holder, "")
        self._stops.pop(holder, None)
        held = self._holders.get(holder)
        if held is not None and not held.reservations and not held.slots:
            del self._holders[holder]

    async def snapshot(self) -> Snapshot:
        return self._state()

    def _state(self) -> Snapshot:
        return Snapshot(
            self.version,
            self.budget.spent,
            self.budget.reserved,
            self.in_flight,
            self.pauses.count,
            self.pauses.seconds,
        )

    def _holder(self, holder: str) -> _Holder:
        held = self._holders.get(holder)
        if held is None:
            held = self._holders[holder] = _Holder()
        return held

    def _give_back(self, slots: int) -> None:
        for _ in range(slots):
            self.slots.release()
        self.in_flight -= slots
        self._changed()

    def _resolve_stop(self, holder: str, reason: str) -> None:
        stop = self._stops.get(holder)
        if stop is None:
            stop = self._stops[holder] = asyncio.get_running_loop().create_future()
        if not stop.done():
            stop.set_result(reason)

    def _changed(self) -> Snapshot:
        self.version += 1
        return self._state()


def start_ledger(ray: Any, *, cap: float | None, spent: float, max_concurrency: int) -> Any:
    """The ledger actor for one run or batch, on the driver's node (it lives and dies with the
    driver: a ledger lost with another node would leave the cap unguarded)."""
    options: dict[str, Any] = {
        "num_cpus": 0,
        "max_concurrency": LEDGER_CONCURRENCY,
        "max_restarts": 0,
    }
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
    except Exception:  # a Ray Client driver has no node of its own: anywhere will do
        pass
    actor = ray.remote(Ledger).options(**options)
    return actor.remote(cap, spent, max_concurrency)


class LedgerReservation(Reservation):
    """A hold in the ledger: ``number`` names it there (None: held locally, no cap)."""

    def __init__(self, amount: float, number: int | None) -> None:
        super().__init__(amount)
        self.number = number


class LedgerBudget:
    """The ``Budget`` of a worker's agent run (and the driver's view of it), on the ledger."""

    def __init__(self, limits: LedgerLimits) -> None:
        self._limits = limits

    @property
    def cap(self) -> float | None:
        return self._limits.cap

    @property
    def spent(self) -> float:
        return self._limits.latest.spent

    async def reserve(self, amount: float) -> Reservation | None:
        limits = self._limits
        if limits.cap is None:  # nothing to guard: no round trip
            return LedgerReservation(amount, None)
        number, snapshot = await limits.actor.reserve.remote(limits.holder, amount)
        limits.observe(snapshot)
        return None if number is None else LedgerReservation(amount, number)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        limits = self._limits
        number = reservation.number if isinstance(reservation, LedgerReservation) else None
        if number is None:
            snapshot = await limits.actor.spend.remote(actual)
        else:
            snapshot = await limits.actor.settle.remote(limits.holder, number, actual)
        limits.observe(snapshot)


class LedgerLimits:
    """``CallLimits`` on the ledger actor, for the task attempt ``holder`` (the driver's view:
    any holder, never used to reserve). ``latest`` is the newest ``Snapshot`` seen."""

    def __init__(self, actor: Any, holder: str, cap: float | None) -> None:
        self.actor = actor
        self.holder = holder
        self.cap = cap
        self.latest = Snapshot()
        self.pauses = ProviderPauses()  # count and seconds, from the latest snapshot
        self.budget = LedgerBudget(self)

    def observe(self, snapshot: Snapshot | None) -> None:
        if snapshot is None or snapshot.version <= self.latest.version:
            return
        self.latest = snapshot
        self.pauses.count = snapshot.pauses
        self.pauses.seconds = snapshot.paused_seconds

    @property
    def in_flight(self) -> int:
        return self.latest.in_flight

    async def acquire(self, provider: str) -> None:
        self.observe(await self.actor.acquire.remote(self.holder, provider))

    def release(self) -> None:
        self.actor.release.remote(self.holder)

    def pause(self, provider: str, seconds: float) -> None:
        self.actor.pause.remote(provider, seconds)

    def for_holder(self, holder: str) -> LedgerLimits:
        """The same ledger, for another holder (a worker's task attempt)."""
        return LedgerLimits(self.actor, holder, self.cap)


__all__ = [
    "LEDGER_CONCURRENCY",
    "Ledger",
    "LedgerBudget",
    "LedgerLimits",
    "LedgerReservation",
    "Snapshot",
    "start_ledger",
]
