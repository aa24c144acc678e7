"""The cost ledger of a run or a batch on Ray: one actor every worker's calls go through.

``Ledger`` is the actor's body. It is an async actor: every method runs on its one event loop,
so the ``InProcessBudget`` and the ``ProviderPauses`` inside need no lock (every method is
``async`` for that reason: Ray runs an async actor's plain methods in other threads). It holds
what the calls of the whole cluster share: the budget (each attempt reserves its worst case
before its call and settles the actual after, so spend never passes the cap however many
nodes call at once) and the pauses a 429 with Retry-After asked for.

Every hold is kept under its *holder*, one agent run's task attempt. When the driver learns
that a task's worker or node is gone, it calls ``forfeit(holder)``: the reservations that task
had open are charged at their full reserved amount (the calls may have been billed), never
settled as zero, and whatever it asks later is refused.

A call costs two round trips (reserve, settle), one without a cap (settle). What else the
workers need travels without asking: every answer carries a ``Snapshot`` (spent, the pauses
under way), and each worker process keeps one long call open (``follow``) that answers when the
driver stops a holder or a 429 begins a pause. The concurrency slots (``policies.max_concurrency``) are the driver's:
at most that many agent runs are under way on the cluster, and each makes one call at a time.

``LedgerLimits`` is the ``CallLimits`` (and ``LedgerBudget`` the ``Budget``) of a worker's agent
run. On the driver the same class is the view the engine, the batch and the progress bar read:
``spent`` and the pauses are the newest snapshot the workers sent back with their events.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from agentops.runtime.budget import COST_CAP_REASON, InProcessBudget, Reservation
from agentops.runtime.limits import ProviderPauses

# An async actor runs this many calls at once; a reservation waiting for budget holds one, as
# does each worker process's ``stops``: it must exceed both together.
LEDGER_CONCURRENCY = 100_000


@dataclass(frozen=True)
class Snapshot:
    """The ledger's state after a change; ``version`` orders snapshots (a newer one wins)."""

    version: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    pauses: int = 0
    paused_seconds: float = 0.0
    paused: tuple[tuple[str, float], ...] = ()  # (provider, seconds left) of pauses under way


@dataclass(frozen=True)
class News:
    """What ``Ledger.follow`` answers a worker process: the stops and the pauses so far."""

    stops: int  # holders stopped so far
    stopped: list[tuple[str, str]]  # (holder, why) of those stopped since the caller last asked
    pauses: int  # pause changes so far
    state: Snapshot  # its ``paused``: the pauses under way


@dataclass
class _Holder:
    """What one task attempt holds: its open reservations, by number."""

    reservations: dict[int, Reservation] = field(default_factory=dict)


class Ledger:
    """The actor's body; see the module docstring. ``spent``: what earlier runs spent (resume)."""

    def __init__(self, cap: float | None, spent: float) -> None:
        self.budget = InProcessBudget(cap, spent=spent)
        self.pauses = ProviderPauses()
        self.version = 0
        self._holders: dict[str, _Holder] = {}
        self._gone: set[str] = set()  # forfeited: anything they ask now is refused
        self._numbers = itertools.count(1)
        self._stopped: set[str] = set()
        self._stops: list[tuple[str, str]] = []  # (holder, why), in the order they were stopped
        self._pauses_changed = 0
        self._followed: asyncio.Condition | None = None

    # --- the budget ---------------------------------------------------------------------------

    async def reserve(self, holder: str, amount: float) -> tuple[int | None, Snapshot]:
        """Hold ``amount`` for ``holder`` (waiting as ``Budget.reserve`` does): its number, or None."""
        if holder in self._gone:
            return None, self._state()
        reservation = await self.budget.reserve(amount)
        if reservation is None:
            return None, self._state()
        if holder in self._gone:  # lost while it waited: no call will use this
            await self.budget.settle(reservation, 0.0)
            return None, self._changed()
        number = next(self._numbers)
        self._holders.setdefault(holder, _Holder()).reservations[number] = reservation
        return number, self._changed()

    async def settle(self, holder: str, number: int, actual: float) -> Snapshot:
        """Replace hold ``number`` by what the call cost; a hold already charged stays charged."""
        held = self._holders.get(holder)
        reservation = held.reservations.pop(number, None) if held is not None else None
        if reservation is not None:
            await self.budget.settle(reservation, actual)
            if held is not None and not held.reservations:
                del self._holders[holder]
        return self._changed()

    async def spend(self, actual: float) -> Snapshot:
        """A call made without a reservation (no cap) cost ``actual``."""
        self.budget.spent += actual
        return self._changed()

    async def pause(self, provider: str, seconds: float) -> None:
        """A 429 asked for ``seconds``: every worker process hears of it at once (``follow``)."""
        self.pauses.pause(provider, seconds)
        self._pauses_changed += 1
        self._changed()
        await self._notify()

    # --- holders ------------------------------------------------------------------------------

    async def forfeit(self, holder: str) -> tuple[list[float], Snapshot]:
        """``holder`` is gone: its open reservations are charged in full (the amounts charged),
        and it is refused (and, should it still run, stopped) from now on."""
        self._gone.add(holder)
        await self.stop(holder, "")
        held = self._holders.pop(holder, None)
        charged = []
        for reservation in held.reservations.values() if held is not None else ():
            await self.budget.settle(reservation, reservation.amount)
            charged.append(reservation.amount)
        return charged, self._changed()

    async def stop(self, holder: str, reason: str) -> None:
        """Ask ``holder``'s agent run to stop: the ``stops`` of every worker process answer."""
        if holder not in self._stopped:
            self._stopped.add(holder)
            self._stops.append((holder, reason))
            await self._notify()

    async def follow(self, stops: int, pauses: int) -> News:
        """Answers once a holder has been stopped since ``stops`` of them were, or a pause begun
        or extended since the ``pauses``-th change. Each worker process keeps one of these
        open, so neither costs a call per task."""
        async with self._condition():
            await self._condition().wait_for(
                lambda: len(self._stops) > stops or self._pauses_changed > pauses
            )
        return News(len(self._stops), self._stops[stops:], self._pauses_changed, self._state())

    async def _notify(self) -> None:
        async with self._condition():
            self._condition().notify_all()

    async def snapshot(self) -> Snapshot:
        return self._state()

    def _condition(self) -> asyncio.Condition:
        if self._followed is None:  # made on the actor's loop, at first use
            self._followed = asyncio.Condition()
        return self._followed

    def _state(self) -> Snapshot:
        now = time.monotonic()
        paused = tuple(
            (provider, until - now) for provider, until in self.pauses.until.items() if until > now
        )
        return Snapshot(
            self.version,
            self.budget.spent,
            self.budget.reserved,
            self.pauses.count,
            self.pauses.seconds,
            paused,
        )

    def _changed(self) -> Snapshot:
        self.version += 1
        return self._state()


def start_ledger(ray: Any, *, cap: float | None, spent: float) -> Any:
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
    return ray.remote(Ledger).options(**options).remote(cap, spent)


class LedgerReservation(Reservation):
    """A hold in the ledger: ``number`` names it there (None: held locally, no cap)."""

    def __init__(self, amount: float, number: int | None) -> None:
        super().__init__(amount)
        self.number = number


class LedgerBudget:
    """The ``Budget`` of a worker's agent run (and the driver's view of it), on the ledger."""

    refusal = COST_CAP_REASON

    def __init__(self, limits: LedgerLimits) -> None:
        self._limits = limits

    @property
    def cap(self) -> float | None:
        return self._limits.cap

    @property
    def capped(self) -> bool:
        return self._limits.cap is not None

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
    """``CallLimits`` on the ledger actor, for the task attempt ``holder``; ``latest`` is the
    newest ``Snapshot`` seen. Its slots are local: the driver lets at most ``max_concurrency``
    agent runs onto the cluster, each of which calls one at a time (``in_flight`` counts here)."""

    def __init__(
        self, actor: Any, holder: str, cap: float | None, pauses: ProviderPauses | None = None
    ) -> None:
        self.actor = actor
        self.holder = holder
        self.cap = cap
        self.latest = Snapshot()
        # The ledger's pauses: a worker process's, kept by its ``follow``, and the snapshots'.
        self.pauses = pauses if pauses is not None else ProviderPauses()
        self.budget = LedgerBudget(self)
        self.in_flight = 0

    def observe(self, snapshot: Snapshot | None) -> None:
        if snapshot is None or snapshot.version <= self.latest.version:
            return
        self.latest = snapshot
        for provider, seconds in snapshot.paused:
            self.pauses.pause(provider, seconds)
        self.pauses.count = snapshot.pauses
        self.pauses.seconds = snapshot.paused_seconds

    def try_acquire(self, provider: str) -> bool:
        if self.pauses.blocks(provider):
            return False
        self.in_flight += 1
        return True

    async def acquire(self, provider: str) -> None:
        await self.pauses.wait(provider)  # a pause any worker's 429 began, as the ledger said
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1

    def pause(self, provider: str, seconds: float) -> None:
        self.pauses.pause(provider, seconds)
        self.actor.pause.remote(provider, seconds)


__all__ = [
    "LEDGER_CONCURRENCY",
    "Ledger",
    "LedgerBudget",
    "LedgerLimits",
    "LedgerReservation",
    "News",
    "Snapshot",
    "start_ledger",
]
