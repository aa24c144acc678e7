"""The executor seam: where one provider call is carried out, given only data.

The engine schedules and an agent's run decides what to send; an executor
performs one call. What it receives can cross a process boundary: the
``Route`` (where the call goes) and the ``ChatRequest`` (what it sends), both
dataclasses that pickle. What comes back is data too: text pieces as
they stream, then a ``ChatResponse``, or an ``errors.ProviderError`` (which
pickles with its status and Retry-After). No live provider and no callback
cross: the provider is rebuilt from the route on the executing side, and the
``on_text`` callback stays on the calling side, fed from the streamed pieces.

``InProcessExecutor`` is the default: it calls the provider on the engine's
event loop, with providers from the run's factory (``ProviderRegistry.get``).
An executor in another process (a worker pool, Ray) rebuilds that factory from
the workflow there, sends each route and request over, and replays the pieces
it gets back into ``on_text``; scheduling, retries, budgets and history stay
on the calling side and do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from agentops.runtime.messages import ChatRequest, ChatResponse
from agentops.runtime.provider import Provider, Route, TextCallback

ProviderFactory = Callable[[Route], Provider]
"""The provider serving a route: one shared instance per provider name (``ProviderRegistry.get``)."""


class Executor(Protocol):
    """Carries out one provider call described by data.

    ``call`` sends ``request`` to the provider ``route`` names and returns its
    answer, passing each streamed text piece to ``on_text`` (a callback of the
    calling side, never sent anywhere) as it arrives. It raises the provider's
    ``ProviderError``; cancelling the call cancels the work wherever it runs.
    """

    async def call(
        self, route: Route, request: ChatRequest, on_text: TextCallback
    ) -> ChatResponse: ...


class InProcessExecutor:
    """Calls the provider on this event loop: the route's provider from ``providers``."""

    __slots__ = ("providers",)

    def __init__(self, providers: ProviderFactory) -> None:
        self.providers = providers

    def call(
        self, route: Route, request: ChatRequest, on_text: TextCallback
    ) -> Coroutine[Any, Any, ChatResponse]:
        # The provider's coroutine, awaited by the caller: no frame of this one in between.
        return self.providers(route).complete(request, on_text)


__all__ = ["Executor", "InProcessExecutor", "ProviderFactory"]
