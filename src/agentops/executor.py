"""The executor seam: how one provider call is carried out.

The engine schedules; an executor performs a call. The default runs it in this
process on the engine's event loop. A distributed executor (a queue, a worker
pool) implements the same one-method protocol without touching scheduling.
"""

from __future__ import annotations

from typing import Protocol

from .messages import ChatRequest, ChatResponse
from .providers.base import Provider, TextCallback


class Executor(Protocol):
    async def call(
        self, provider: Provider, request: ChatRequest, on_text: TextCallback
    ) -> ChatResponse: ...


class InProcessExecutor:
    async def call(
        self, provider: Provider, request: ChatRequest, on_text: TextCallback
    ) -> ChatResponse:
        return await provider.complete(request, on_text)
