"""The cost ceiling: reserve an attempt's worst case before the call, settle the actual after.

With every in-flight attempt holding a reservation no smaller than what it can
cost, ``spent`` can never pass ``cap``. All methods run on the engine's event
loop, so no lock is needed beyond the condition used to wait for settlements.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import UsageError
from .messages import ChatRequest, ToolDefinition

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
    amount: float
    settled: bool = False


class Budget:
    """Tracks spend against an optional cap. ``spent`` may start above zero (resume)."""

    def __init__(self, cap: float | None, spent: float = 0.0) -> None:
        self.cap = cap
        self.spent = spent
        self.reserved = 0.0
        self._changed = asyncio.Condition()

    def fits(self, amount: float, *, counting_reserved: bool = True) -> bool:
        if self.cap is None:
            return True
        held = self.reserved if counting_reserved else 0.0
        return self.spent + held + amount <= self.cap

    async def reserve(self, amount: float) -> Reservation | None:
        """Hold ``amount``; wait while only other reservations stand in the way.

        Returns None when it cannot fit even once every in-flight attempt has
        settled: the caller then skips the agent ("cost cap").
        """
        if self.cap is None:  # nothing to guard: skip the condition's lock
            return Reservation(amount)
        async with self._changed:
            while not self.fits(amount):
                if self.reserved == 0 or not self.fits(amount, counting_reserved=False):
                    return None
                await self._changed.wait()
            self.reserved += amount
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
            self.reserved -= reservation.amount
            self.spent += actual
            self._changed.notify_all()

    @property
    def remaining(self) -> float | None:
        return None if self.cap is None else max(0.0, self.cap - self.spent)
