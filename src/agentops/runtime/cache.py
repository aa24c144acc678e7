"""The response cache's runtime side: the request key, what a hit carries, and the seam to a store.

**The key** of a model call is everything that decides its answer, and nothing else: the
endpoint (kind, base URL, deployment, API version and the form an output schema is sent in;
never the API key), the model as sent, every message (role, text, tool calls, tool call id),
every sampling parameter, ``max_tokens``, the tools offered (name, description, schema) and the
output schema. Its parts go into canonical JSON (keys sorted, no spaces) and a sha256.

A ``RequestKey`` carries the key with its ``digest``: the same parts with each message, tool,
schema and the endpoint replaced by its own sha256, the model and the parameters in clear. The
key is the sha256 of those parts, so each message is hashed once; the digest (each hash cut to
16 hex digits, as compact JSON text: a few hundred bytes an attempt holds) is recorded with
every attempt, and a replay that finds no recorded match says which part differs
(``describe_difference``). A request whose parts are not JSON (a schema holding a Python object
built in code) has no key: it is called live and never cached, rather than keyed on what could
be read of it.

**The seam**: a run's ``RunContext`` holds ``CallKeys`` (how to name each provider's endpoint)
and, when caching or replaying, a ``ResponseCache``; ``store.cache`` implements it over the
history (``HistoryReader`` / ``HistoryWriter``), so any store that implements those serves it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agentops.errors import ProviderError
from agentops.runtime.messages import ChatRequest, ChatResponse, Message, ToolCall
from agentops.runtime.provider import Route
from agentops.runtime.usage import Usage


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, no NaN: one text per value. TypeError/ValueError when not JSON."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _sha(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _message(message: Message) -> dict[str, Any]:
    part: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        part["tool_calls"] = [[c.id, c.name, c.arguments] for c in message.tool_calls]
    if message.tool_call_id is not None:
        part["tool_call_id"] = message.tool_call_id
    return part


@dataclass(frozen=True)
class RequestKey:
    """A model call's cache key (64 hex digits) and its digest as JSON text (see the module)."""

    key: str
    digest: str

    @property
    def parts(self) -> dict[str, Any]:
        """The digest read back (for a mismatch message; not on a call's path)."""
        parts = json.loads(self.digest)
        return parts if isinstance(parts, dict) else {}

    @classmethod
    def of(cls, endpoint: Mapping[str, Any], request: ChatRequest) -> RequestKey | None:
        """The key of ``request`` sent to ``endpoint``; None when a part is not JSON."""
        try:
            output = request.response_format
            endpoint_sha = _sha(dict(endpoint))
            messages = [(m.role, _sha(_message(m))) for m in request.messages]
            tools = [
                (t.name, _sha([t.name, t.description, dict(t.parameters)])) for t in request.tools
            ]
            schema = (
                None if output is None else _sha([output.name, dict(output.schema), output.strict])
            )
            # Every sampling parameter the request carries; a new one joins this mapping.
            sampling = {"temperature": request.temperature}

            def parts(cut: int) -> dict[str, Any]:
                return {
                    "endpoint": endpoint_sha[:cut],
                    "model": request.model,
                    "messages": [f"{role}:{sha[:cut]}" for role, sha in messages],
                    "sampling": sampling,
                    "max_tokens": request.max_tokens,
                    "tools": [f"{name}:{sha[:cut]}" for name, sha in tools],
                    "output": None if schema is None else schema[:cut],
                }

            return cls(_sha(parts(64)), canonical_json(parts(16)))
        except (TypeError, ValueError):
            return None


def tool_key(source: str, name: str, arguments: Any) -> RequestKey | None:
    """The key of a tool call whose tool says ``cache: true``: where the tool comes from (its
    ``python:`` reference or MCP server), its name and its arguments as parsed."""
    try:
        digest = {"tool": name, "source": _sha(source), "arguments": _sha(arguments)}
        return RequestKey(
            _sha(digest),
            canonical_json(
                {**digest, "source": digest["source"][:16], "arguments": digest["arguments"][:16]}
            ),
        )
    except (TypeError, ValueError):
        return None


_PARTS = {
    "endpoint": "the endpoint (base URL, deployment, API version or schema form)",
    "tools": "the tools offered",
    "output": "the output schema",
}


def describe_difference(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """What differs between two digests, in words: ``model 'b' (recorded 'a'); message 2 (user)``."""
    found: list[str] = []
    if recorded.get("model") != current.get("model"):
        found.append(f"model {current.get('model')!r} (recorded {recorded.get('model')!r})")
    before, now = list(recorded.get("messages") or []), list(current.get("messages") or [])
    changed = [i for i, (a, b) in enumerate(zip(before, now, strict=False)) if a != b]
    if changed:
        first = changed[0]
        role = str(now[first]).split(":", 1)[0]
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        found.append(f"message {first + 1} ({role}){more}")
    if len(before) != len(now):
        found.append(f"{len(now)} messages (recorded {len(before)})")
    sampling_before = recorded.get("sampling") or {}
    sampling_now = current.get("sampling") or {}
    for name in sorted(set(sampling_before) | set(sampling_now)):
        if sampling_before.get(name) != sampling_now.get(name):
            found.append(f"{name} {sampling_now.get(name)} (recorded {sampling_before.get(name)})")
    if recorded.get("max_tokens") != current.get("max_tokens"):
        found.append(
            f"max_tokens {current.get('max_tokens')} (recorded {recorded.get('max_tokens')})"
        )
    found.extend(text for part, text in _PARTS.items() if recorded.get(part) != current.get(part))
    return "; ".join(found) or "nothing in the digest (the key differs)"


class CallKeys:
    """How each provider's endpoint is named in a key (``RequestKey``), by provider name.

    ``endpoints`` is built by whoever routes the run (``assembly``), from the registry: a
    provider missing from it is named by its route's kind and name.
    """

    __slots__ = ("endpoints",)

    def __init__(self, endpoints: Mapping[str, Mapping[str, Any]]) -> None:
        self.endpoints = endpoints

    def key(self, route: Route, request: ChatRequest) -> RequestKey | None:
        endpoint = self.endpoints.get(route.provider)
        if endpoint is None:
            endpoint = {"kind": route.kind, "provider": route.provider}
        return RequestKey.of(endpoint, request)


# --- responses as stored ----------------------------------------------------------------------


def response_json(response: ChatResponse) -> str:
    """A response as stored (a cache entry, a recorded attempt): what ``response_from_json`` reads."""
    return json.dumps(
        {
            "text": response.text,
            "finish_reason": response.finish_reason,
            "tool_calls": [[c.id, c.name, c.arguments] for c in response.tool_calls],
            "model": response.model,
            "refusal": response.refusal,
        },
        ensure_ascii=False,
    )


def response_from_json(text: str, usage: Usage) -> ChatResponse:
    """A stored response, with the usage recorded beside it; ValueError when it is damaged."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("a stored response is not an object with its text")
    calls = tuple(ToolCall(str(i), str(n), str(a)) for i, n, a in data.get("tool_calls") or ())
    return ChatResponse(
        text=data["text"],
        usage=usage,
        finish_reason=data.get("finish_reason"),
        tool_calls=calls,
        model=data.get("model"),
        refusal=data.get("refusal"),
    )


@dataclass(frozen=True)
class CachedAnswer:
    """A hit: the response as first answered (its usage the original's) and what it cost then."""

    response: ChatResponse
    cost: float | None  # None: the model had no known price


class ReplayMismatchError(ProviderError):
    """A replayed run made a call its recording has no answer for (never retried)."""

    retryable = False


class NoLiveCalls:
    """The executor of a replay: a call that reaches it had no key to be answered by
    (``RequestKey.of``), and fails its agent rather than go to the network."""

    __slots__ = ("recording",)

    def __init__(self, recording: str) -> None:
        self.recording = recording

    async def call(
        self, route: Route, request: ChatRequest, on_text: Callable[[str], None]
    ) -> ChatResponse:
        raise ReplayMismatchError(
            f"replaying {self.recording}: agent {request.agent} made a call with no request key "
            "(a part of it is not JSON), so no recorded answer can match it"
        )


class ResponseCache(Protocol):
    """Where a run's calls look for an answer before calling (``store.cache`` implements it).

    ``reads`` / ``writes``: whether ``lookup`` / ``store`` are used. ``lookup`` answers a hit or
    None (a miss: the call is made), or raises ``ReplayMismatchError`` when a miss must not
    become a live call (a replay). ``store`` keeps an accepted answer; it never raises: a
    cache that cannot be written costs a later call, not this agent.
    """

    @property
    def reads(self) -> bool: ...

    @property
    def writes(self) -> bool: ...

    @property
    def replaying(self) -> str | None:
        """What a replay answers from ("workflow run 7"); None for the cache."""
        ...

    def lookup(self, agent: str, key: RequestKey) -> CachedAnswer | None: ...

    def store(
        self, agent: str, key: RequestKey, response: ChatResponse, cost: float | None
    ) -> None: ...


__all__ = [
    "CachedAnswer",
    "CallKeys",
    "NoLiveCalls",
    "ReplayMismatchError",
    "RequestKey",
    "ResponseCache",
    "canonical_json",
    "describe_difference",
    "response_from_json",
    "response_json",
    "tool_key",
]
