"""``FakeProvider``: scripted replies, for testing workflows without a network.

Pass it as the provider of a run and every agent talks to it::

    import agentops
    from agentops import FakeProvider

    fake = FakeProvider({"researcher": "three findings", "summarizer": lambda request: "short"})
    result = agentops.run("flow.yaml", provider=fake)
    assert result.ok and len(fake.requests) == 2

``reply`` is a string (every call gets it), a function of the ``ChatRequest``
returning the text (sync or async), or a mapping from agent name or model to
either of those; a mapping may hold a ``"*"`` entry for everything else.
``latency`` (seconds, or a function of the request) delays each call;
``errors`` scripts failures: a list consumed one per call (``None`` lets that
call succeed), or a mapping from agent name or model to such a list. Every
request is kept in ``requests``. Text reaches ``on_text`` word by word; usage
is estimated (about four bytes per token) and flagged ``estimated``.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Union

from ..errors import BadRequestError
from ..messages import ChatRequest, ChatResponse
from .base import TextCallback, estimated_usage
from .kinds import EVERYTHING, Capabilities

ReplyFunction = Callable[[ChatRequest], Union[str, Awaitable[str]]]
Reply = Union[str, ReplyFunction]
ErrorScript = Iterable[BaseException | None]
FALLBACK_KEY = "*"


class FakeProvider:
    """A Provider that answers from a script; see the module docstring."""

    def __init__(
        self,
        reply: Reply | Mapping[str, Reply] = "ok",
        *,
        latency: float | Callable[[ChatRequest], float] = 0.0,
        errors: ErrorScript | Mapping[str, ErrorScript] = (),
        name: str = "fake",
        kind: str = "fake",
        capabilities: Capabilities = EVERYTHING,
    ) -> None:
        self.name = name
        self.kind = kind
        self.capabilities = capabilities
        self.reply = reply
        self.latency = latency
        self.requests: list[ChatRequest] = []
        self._errors: dict[str, deque[BaseException | None]]
        if isinstance(errors, Mapping):
            self._errors = {key: deque(script) for key, script in errors.items()}
        else:
            self._errors = {FALLBACK_KEY: deque(errors)}

    def requests_for(self, agent_or_model: str) -> list[ChatRequest]:
        return [r for r in self.requests if agent_or_model in (r.agent, r.model)]

    async def complete(self, request: ChatRequest, on_text: TextCallback) -> ChatResponse:
        self.requests.append(request)
        delay = self.latency(request) if callable(self.latency) else self.latency
        if delay > 0:
            await asyncio.sleep(delay)
        error = self._next_error(request)
        if error is not None:
            raise error
        text = await self._text_for(request)
        for piece in re.findall(r"\S*\s*", text):
            if piece:
                on_text(piece)
        return ChatResponse(text=text, usage=estimated_usage(request, text), finish_reason="stop")

    async def aclose(self) -> None:
        return None

    def _next_error(self, request: ChatRequest) -> BaseException | None:
        for key in (request.agent, request.model, FALLBACK_KEY):
            script = self._errors.get(key) if key is not None else None
            if script:
                return script.popleft()
        return None

    async def _text_for(self, request: ChatRequest) -> str:
        reply = self.reply
        if isinstance(reply, Mapping):
            chosen = next(
                (reply[key] for key in (request.agent, request.model, FALLBACK_KEY) if key is not None and key in reply),
                None,
            )
            if chosen is None:
                raise BadRequestError(
                    f"FakeProvider has no reply for agent {request.agent!r} or model {request.model!r}; "
                    f"add one of them (or '{FALLBACK_KEY}') to its replies"
                )
            reply = chosen
        if isinstance(reply, str):
            return reply
        produced = reply(request)
        return await produced if inspect.isawaitable(produced) else produced


__all__ = ["FakeProvider"]
