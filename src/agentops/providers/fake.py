"""``FakeProvider``: scripted replies, for testing workflows without a network.

Pass it as the provider of a run and every agent talks to it::

    import agentops
    from agentops import FakeProvider

    fake = FakeProvider({"researcher": "three findings", "summarizer": lambda request: "short"})
    result = agentops.run("flow.yaml", provider=fake)
    assert result.ok and len(fake.requests) == 2

Without ``reply`` every call gets ``"ok"``, and an agent with an output schema a
JSON value that follows it (``structured.example_for_schema``). ``reply`` is a
string (every call gets it), a function of the ``ChatRequest``
returning the text (sync or async), or a mapping from agent name or model to
either of those; a mapping may hold a ``"*"`` entry for everything else.

Tool calls are scripted the same way: a reply may be a ``ToolCall`` (made with
``tool_call("add", a=1, b=2)``) or a list or tuple of them (parallel calls in
one turn), and a function may return those too. A *list* of replies is a
script of turns, consumed one per call for that key::

    fake = FakeProvider({"researcher": [tool_call("lookup", key="alpha"), "alpha is 1"]})

A reply of a single ``ToolCall`` asks for it on every call: a model that never stops.
``latency`` (seconds, or a function of the request) delays each call;
``errors`` scripts failures: a list consumed one per call (``None`` lets that
call succeed), or a mapping from agent name or model to such a list. Every
request is kept in ``requests``. Text reaches ``on_text`` word by word; usage
is estimated (about four bytes per token) and flagged ``estimated``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Union

from agentops.errors import BadRequestError
from agentops.providers.kinds import EVERYTHING
from agentops.runtime.messages import ChatRequest, ChatResponse, ToolCall
from agentops.runtime.provider import Capabilities, TextCallback, estimated_usage
from agentops.runtime.structured import example_for_schema

Answer = Union[str, ToolCall, Sequence[ToolCall]]
ReplyFunction = Callable[[ChatRequest], Union[Answer, Awaitable[Answer]]]
Reply = Union[Answer, ReplyFunction, list[Any]]  # a list: one reply per turn
ErrorScript = Iterable[BaseException | None]
FALLBACK_KEY = "*"


class FakeProvider:
    """A Provider that answers from a script; see the module docstring."""

    def __init__(
        self,
        reply: Reply | Mapping[str, Reply] | None = None,
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
        self.reply = (
            reply  # None: "ok", or for a request with a JSON schema a value that follows it
        )
        self.latency = latency
        self.requests: list[ChatRequest] = []
        self._scripts: dict[int, deque[Any]] = {}  # by id() of a list reply: its turns not yet used
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
        text, calls = await self._answer_for(request)
        for piece in re.findall(r"\S*\s*", text):
            if piece:
                on_text(piece)
        billed = text + "".join(call.name + call.arguments for call in calls)
        return ChatResponse(
            text=text,
            usage=estimated_usage(request, billed),
            finish_reason="tool_calls" if calls else "stop",
            tool_calls=calls,
            model=request.model,
        )

    async def aclose(self) -> None:
        return None

    def _next_error(self, request: ChatRequest) -> BaseException | None:
        for key in (request.agent, request.model, FALLBACK_KEY):
            script = self._errors.get(key) if key is not None else None
            if script:
                return script.popleft()
        return None

    async def _answer_for(self, request: ChatRequest) -> tuple[str, tuple[ToolCall, ...]]:
        reply: Any = self.reply
        if reply is None:
            schema = request.response_format.schema if request.response_format is not None else None
            return ("ok" if schema is None else json.dumps(example_for_schema(schema))), ()
        if isinstance(reply, Mapping):
            chosen = next(
                (
                    reply[key]
                    for key in (request.agent, request.model, FALLBACK_KEY)
                    if key is not None and key in reply
                ),
                None,
            )
            if chosen is None:
                raise BadRequestError(
                    f"FakeProvider has no reply for agent {request.agent!r} or model {request.model!r}; "
                    f"add one of them (or '{FALLBACK_KEY}') to its replies"
                )
            reply = chosen
        if isinstance(reply, list):
            script = self._scripts.setdefault(id(reply), deque(reply))
            if not script:
                raise BadRequestError(
                    f"FakeProvider's script for agent {request.agent!r} has no reply left for call "
                    f"{len(self.requests_for(request.agent or request.model))}; add one"
                )
            reply = script.popleft()
        if callable(reply) and not isinstance(reply, ToolCall):
            produced = reply(request)
            reply = await produced if inspect.isawaitable(produced) else produced
        if isinstance(reply, str):
            return reply, ()
        if isinstance(reply, ToolCall):
            return "", (reply,)
        return "", tuple(reply)


_CALL_IDS = itertools.count(1)


def tool_call(name: str, *, call_id: str | None = None, **arguments: Any) -> ToolCall:
    """A scripted tool call: ``tool_call("add", a=1, b=2)`` (ids are unique unless given)."""
    return ToolCall(call_id or f"call_{next(_CALL_IDS)}", name, json.dumps(arguments))


__all__ = ["FakeProvider", "tool_call"]
