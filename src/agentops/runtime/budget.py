"""The cost ceiling: reserve an attempt's worst case before the call, settle the actual after.

``Budget`` is the interface the runtime depends on (``engine``, ``agent_run``);
``InProcessBudget`` implements it for one process, on the engine's event loop.
A budget shared across processes (a ledger in the store, an actor) implements
the same protocol. ``input_token_bound`` is the worst case of a request's input.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from agentops.errors import UsageError
from agentops.runtime.messages import ChatRequest, ToolDefinition

# Byte-level BPE tokenizers never produce more tokens than UTF-8 bytes; chat
# templates add a few tokens per message (and per tool call or tool offered) and to
# prime the reply.
TOKENS_PER_MESSAGE = 16
TOKENS_PER_REQUEST = 16


def input_token_bound(request: ChatRequest) -> int:
    """An upper bound on the input tokens ``request`` can be billed for: every message's
    text, the tool calls and results it carries, and the tools offered (as JSON)."""
    total = TOKENS_PER_REQUEST
    for message in request.messages:
        total += TOKENS_PER_MESSAGE + len(message.content.encode("utf-8"))
        for call in message.tool_calls:
            total += (
                TOKENS_PER_MESSAGE
                + len(call.id)
                + len(call.name)
                + len(call.arguments.encode("utf-8"))
            )
        if message.tool_call_id is not None:
            total += len(message.tool_call_id.encode("utf-8"))
    if request.tools:
        total += tools_token_bound(request.tools)
    return total


def tools_token_bound(tools: Iterable[ToolDefinition]) -> int:
    """What offering ``tools`` adds to a prompt: each one's name, description and schema as JSON."""
    return sum(
        TOKENS_PER_MESSAGE
        + len(
            json.dumps(
                {"name": t.name, "description": t.description, "parameters": t.parameters}
            ).encode("utf-8")
        )
        for t in tools
    )


def check_cap(cap: float | None, name: str = "cost_cap") -> float | None:
    """``cap`` when it is None or a finite amount of at least 0; else ``UsageError`` naming ``name``.
    An infinite cap would be no cap while looking like one, and NaN compares false to every spend."""
    if cap is not None and not (math.isfinite(cap) and cap >= 0):
        raise UsageError(f"{name} must be a finite number of USD, 0 or more (got {cap:g})")
    return cap


@dataclass
class Reservation:
    """An amount held against a budget until it is settled.

    A budget shared across processes may subclass it to carry what identifies the
    hold there (a ledger row, a holder's id); it stays plain data.
    """

    amount: float
    settled: bool = False


class Budget(Protocol):
    """Spend against an optional cap, kept under it by reserving each call's worst case.

    The protocol, for every implementation:

    - ``reserve(amount)`` holds ``amount`` before a call. It returns at once when
      the amount fits beside what is spent and reserved; it waits while only
      other reservations stand in the way (their settlements may free enough);
      it returns None when the amount cannot fit even once every reservation has
      settled (the caller then skips the agent: "cost cap").
    - ``settle(reservation, actual)`` replaces the hold by what the call cost,
      once (a second settle of the same reservation does nothing).
    - ``spent`` is what settled calls cost, starting from what earlier workflow
      runs spent (resume); ``cap`` is the cap, None for no cap (then ``reserve``
      never waits and never refuses).
    - A reservation whose holder is gone without settling (a worker process that
      died mid-call) counts as spent, in full: the call may have been billed, so
      the cap must still hold. One process cannot lose a holder without losing
      the budget too; implementations shared across processes must do this.

    With every in-flight call holding a reservation no smaller than what it can
    cost, ``spent`` never passes ``cap``.
    """

    @property
    def cap(self) -> float | None: ...

    @property
    def spent(self) -> float: ...

    async def reserve(self, amount: float) -> Reservation | None: ...

    async def settle(self, reservation: Reservation, actual: float) -> None: ...


class InProcessBudget:
    """The ``Budget`` of one process. ``spent`` may start above zero (resume).

    Every method runs on the engine's event loop, so no lock is needed beyond
    the condition used to wait for settlements.
    """

    def __init__(self, cap: float | None, spent: float = 0.0) -> None:
        self.cap = cap
        self.spent = spent
        self.reserved = 0.0
        self._open = 0  # reservations not yet settled: "none left" must not hang on float residue
        self._changed = asyncio.Condition()

    def fits(self, amount: float, *, counting_reserved: bool = True) -> bool:
        if self.cap is None:
            return True
        held = self.reserved if counting_reserved else 0.0
        return self.spent + held + amount <= self.cap

    async def reserve(self, amount: float) -> Reservation | None:
        """Hold ``amount``; wait while only other reservations stand in the way (see ``Budget``)."""
        if self.cap is None:  # nothing to guard: skip the condition's lock
            return Reservation(amount)
        async with self._changed:
            while not self.fits(amount):
                if self._open == 0 or not self.fits(amount, counting_reserved=False):
                    return None
                await self._changed.wait()
            self.reserved += amount
            self._open += 1
            return Reservation(amount)

    async def settle(self, reservation: Reservation, actual: float) -> None:
        """Replace the hold by what the attempt really cost."""
        if reservation.settled:
            return
        reservation.settled = True
        if self.cap is None:
            self.spent += actual
            return
        async with self._changed:
            self._open -= 1
            # Sums of floats leave residue: with nothing held, nothing is reserved, exactly.
            self.reserved = self.reserved - reservation.amount if self._open else 0.0
            self.spent += actual
            self._changed.notify_all()

    @property
    def remaining(self) -> float | None:
        return None if self.cap is None else max(0.0, self.cap - self.spent)


__all__ = [
    "Budget",
    "InProcessBudget",
    "Reservation",
    "check_cap",
    "input_token_bound",
    "tools_token_bound",
]
