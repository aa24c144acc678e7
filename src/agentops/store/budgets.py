"""Named budgets: a cap that every run drawing on it shares, across processes and machines,
kept in the history's store (tables ``budgets`` and ``budget_holds``, migration 13).

Each attempt of a run under a budget reserves its worst case in the store before its call,
in one transaction that reads what the budget's period has spent and holds and adds the
hold only if it fits (``StoreBudget.reserve``); after the call the hold is settled to the
actual cost, once. The transaction is serialized per budget: SQLite's ``BEGIN IMMEDIATE``
takes the file's write lock, PostgreSQL's ``SELECT … FOR UPDATE`` the budget's row; so
however many processes reserve at once, spent + held never passes the cap.

An attempt that does not fit waits while only other holds stand in the way (polling the
store; a settle in this process wakes it at once), and is refused when it cannot fit even
once they have all settled: its agent is skipped "budget NAME".

A process that dies holding a hold cannot settle it. Once the hold is ``GRACE_SECONDS`` old
and its holder is dead (on this host: its pid is gone; elsewhere: its heartbeat, refreshed
every ``liveness.HEARTBEAT_SECONDS`` while it holds anything, is ``STALE_AFTER_SECONDS``
old), whichever process next reserves on the budget charges it at its worst case (never
zero: the call may have been billed); ``budget show`` reports how much is charged so.

Periods are UTC: ``day``, ``week`` (from Monday), ``month``, or ``total`` (no reset). A hold
belongs to the period it was reserved in, so a run crossing midnight draws each attempt from
the period in which it was reserved.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentops.errors import ConfigurationError, UsageError
from agentops.runtime.budget import CURRENT_WORKFLOW_RUN, Reservation
from agentops.store.database import Connection, Database
from agentops.store.liveness import (
    HEARTBEAT_SECONDS,
    INTERRUPTED,
    RUNNING,
    effective_status,
    this_process,
)
from agentops.store.timestamps import to_iso

__all__ = [
    "GRACE_SECONDS",
    "PERIODS",
    "BudgetStatus",
    "StoreBudget",
    "budget_statuses",
    "period_start",
    "set_budget",
]

PERIODS = ("total", "day", "week", "month")
GRACE_SECONDS = 60.0  # a dead holder's hold is charged once it is this old
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_POLL_FIRST, _POLL_MAX = 0.02, 0.5  # seconds between looks at the store while waiting


def period_start(period: str, now: float) -> str:
    """The UTC period ``now`` falls in, as its holds record it ("" for ``total``)."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        return moment.date().isoformat()
    if period == "week":
        return (moment.date() - timedelta(days=moment.weekday())).isoformat()
    if period == "month":
        return f"{moment:%Y-%m}"
    return ""


@dataclass
class BudgetStatus:
    name: str
    cap: float
    period: str
    period_start: str  # "" for total
    spent: float  # settled holds' actual cost, and dead holders' holds at their worst case
    reserved: float  # held now by calls in flight
    charged: float  # of spent: holds of dead processes counted at their worst case
    runs: int  # workflow runs that drew on it in this period

    @property
    def remaining(self) -> float:
        return max(0.0, self.cap - self.spent - self.reserved)

    def fits(self, amount: float) -> bool:
        return self.spent + self.reserved + amount <= self.cap

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cap": self.cap,
            "period": self.period,
            "period_start": self.period_start or None,
            "spent": round(self.spent, 10),
            "reserved": round(self.reserved, 10),
            "remaining": round(self.remaining, 10),
            "charged_dead": round(self.charged, 10),
            "runs": self.runs,
        }


def check_budget_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"budget name {name!r}: use letters, digits, '_', '.' and '-' (up to 64, "
            "starting with a letter or digit)"
        )
    return name


def set_budget(store: Database, name: str, cap: float, period: str = "total") -> None:
    """Create the budget, or change its cap and period (what it has spent stays)."""
    check_budget_name(name)
    if not (math.isfinite(cap) and cap >= 0):
        raise UsageError(f"--cap must be a finite number of USD, 0 or more (got {cap:g})")
    if period not in PERIODS:
        raise UsageError(f"--period {period!r}: one of {', '.join(PERIODS)}")
    at = to_iso(time.time())
    store.write(
        lambda connection: connection.execute(
            """INSERT INTO budgets (name, cap, period, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET cap = excluded.cap, period = excluded.period,
                updated_at = excluded.updated_at""",
            (name, cap, period, at, at),
        )
    )


def budget_statuses(store: Database, name: str | None = None) -> list[BudgetStatus]:
    """Every budget (or the one named), with its current period's totals; dead holds charged."""
    now = time.time()
    where, parameters = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    found = store.read(
        f"SELECT id, name, cap, period FROM budgets {where} ORDER BY name", parameters
    )
    if name is not None and not found:
        raise ConfigurationError(_no_budget(store, name))
    statuses = []
    for budget_id, budget_name, cap, period in found:
        start = period_start(period, now)
        store.write(functools.partial(_charge_dead, budget_id=budget_id, now=now))
        statuses.append(_status(store.connection, budget_id, budget_name, cap, period, start))
    return statuses


def _no_budget(store: Database, name: str) -> str:
    return (
        f"no budget named {name!r} in {store.path}; create it with "
        f"agentops budget set {name} --cap USD (agentops budget list shows them)"
    )


def _status(
    connection: Connection, budget_id: int, name: str, cap: float, period: str, start: str
) -> BudgetStatus:
    spent, reserved, charged, runs = connection.execute(
        """SELECT coalesce(sum(CASE WHEN state <> 'held' THEN spent ELSE 0 END), 0),
            coalesce(sum(CASE WHEN state = 'held' THEN amount ELSE 0 END), 0),
            coalesce(sum(CASE WHEN state = 'charged' THEN spent ELSE 0 END), 0),
            count(DISTINCT workflow_run_id)
        FROM budget_holds WHERE budget_id = ? AND period_start = ?""",
        (budget_id, start),
    ).fetchone()
    return BudgetStatus(
        name, float(cap), period, start, float(spent), float(reserved), float(charged), int(runs)
    )


def _charge_dead(connection: Connection, *, budget_id: int, now: float) -> None:
    """Holds of dead processes, older than the grace period, count as spent at their worst case."""
    old = connection.execute(
        """SELECT id, pid, hostname, process_start, heartbeat_at FROM budget_holds
        WHERE budget_id = ? AND state = 'held' AND reserved_at < ?""",
        (budget_id, to_iso(now - GRACE_SECONDS)),
    ).fetchall()
    dead = [
        (to_iso(now), row[0])
        for row in old
        if effective_status(RUNNING, row[1], row[2], row[3], row[4], now=now) == INTERRUPTED
    ]
    if dead:
        connection.executemany(
            "UPDATE budget_holds SET state = 'charged', spent = amount, settled_at = ? "
            "WHERE id = ? AND state = 'held'",
            dead,
        )


@dataclass
class StoreHold(Reservation):
    """A hold in ``budget_holds`` (its row id)."""

    hold_id: int = 0


_WAIT = -1  # try_reserve: only other holds stand in the way


class StoreBudget:
    """The ``Budget`` (``runtime.budget``) of a named budget in ``store``; for one event loop."""

    def __init__(self, store: Database, name: str) -> None:
        self.store = store
        self.name = name
        self.refusal = f"budget {name}"
        row = store.read("SELECT id, cap, period FROM budgets WHERE name = ?", (name,))
        if not row:
            raise ConfigurationError(_no_budget(store, name))
        self.budget_id = int(row[0][0])
        self._cap = float(row[0][1])
        self._holding: set[int] = set()
        self._settled = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        # SQLite's BEGIN IMMEDIATE already serializes writers; PostgreSQL locks the budget's row.
        self._lock_row = " FOR UPDATE" if store.dialect == "postgresql" else ""

    @property
    def cap(self) -> float | None:
        return self._cap

    @property
    def capped(self) -> bool:
        return True

    @property
    def spent(self) -> float:
        return budget_statuses(self.store, self.name)[0].spent

    async def reserve(self, amount: float) -> Reservation | None:
        delay = _POLL_FIRST
        while True:
            self._settled.clear()
            outcome = self._try_reserve(amount)
            if outcome is None:
                return None
            if outcome != _WAIT:
                self._holding.add(outcome)
                self._start_heartbeat()
                return StoreHold(amount, hold_id=outcome)
            # Only holds stand in the way: a settle here wakes us, one elsewhere is polled for.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), delay)
            delay = min(delay * 2, _POLL_MAX)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        if reservation.settled:
            return
        reservation.settled = True
        assert isinstance(reservation, StoreHold)
        row = (actual, to_iso(time.time()), reservation.hold_id)
        # A hold charged meanwhile as a dead holder's (a process cut off for longer than the
        # grace period) stays charged at its worst case: never less than what it may cost.
        self.store.write(
            lambda connection: connection.execute(
                "UPDATE budget_holds SET state = 'settled', spent = ?, settled_at = ? "
                "WHERE id = ? AND state = 'held'",
                row,
            )
        )
        self._holding.discard(reservation.hold_id)
        self._settled.set()

    def _try_reserve(self, amount: float) -> int | None:
        """One transaction: the hold's id, ``_WAIT``, or None (cannot fit even with no holds)."""
        now = time.time()
        pid, host, started = this_process()
        run = CURRENT_WORKFLOW_RUN.get()

        def work(connection: Connection) -> int | None:
            found = connection.execute(
                f"SELECT cap, period FROM budgets WHERE id = ?{self._lock_row}", (self.budget_id,)
            ).fetchone()
            if found is None:
                raise ConfigurationError(_no_budget(self.store, self.name))
            cap, period = float(found[0]), str(found[1])
            self._cap = cap
            _charge_dead(connection, budget_id=self.budget_id, now=now)
            start = period_start(period, now)
            status = _status(connection, self.budget_id, self.name, cap, period, start)
            if not status.fits(amount):
                return _WAIT if status.spent + amount <= cap and status.reserved > 0 else None
            at = to_iso(now)
            cursor = connection.execute(
                """INSERT INTO budget_holds (budget_id, period_start, amount, state, workflow_run_id,
                    pid, hostname, process_start, heartbeat_at, reserved_at)
                VALUES (?, ?, ?, 'held', ?, ?, ?, ?, ?, ?)""",
                (self.budget_id, start, amount, run, pid, host, started, at, at),
            )
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

        return self.store.write(work)

    def close(self) -> None:
        """Stop the heartbeat (the run is over; every hold it took is settled)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        """While this process holds anything, its holds' heartbeat says it is alive."""
        while self._holding:
            await asyncio.sleep(HEARTBEAT_SECONDS / 2)
            held = sorted(self._holding)
            if not held:
                break
            sql = f"UPDATE budget_holds SET heartbeat_at = ? WHERE id IN ({', '.join('?' * len(held))}) AND state = 'held'"
            self.store.write(functools.partial(_execute, sql=sql, row=(to_iso(time.time()), *held)))


def _execute(connection: Connection, *, sql: str, row: tuple[object, ...]) -> None:
    connection.execute(sql, row)
