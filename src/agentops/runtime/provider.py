"""The provider boundary: one small protocol every model backend implements.

The request and response types it speaks are in ``messages`` (re-exported here
for code written before they moved). A provider declares what it can do as
``Capabilities``; the table of what each kind of provider can do is
``agentops.providers.kinds``.

A provider turns a ``ChatRequest`` into a ``ChatResponse``, streaming text
through ``on_text`` as it arrives. It raises only ``errors.ProviderError``
subclasses: SDK exceptions are translated at this boundary, in one place per
provider, so the engine's retry policy sees one vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agentops.runtime.messages import ChatRequest, ChatResponse, Message
from agentops.runtime.usage import Usage

TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do. ``limits`` says why something is missing, for messages."""

    streaming: bool = True
    tools: bool = False  # function calling: the model may ask for tool calls
    json_schema: bool = False  # structured output following a JSON schema
    limits: str = ""

    def lacks(self, *, tools: bool = False, json_schema: bool = False) -> list[str]:
        """The features asked for that this provider does not have, in words."""
        missing = []
        if tools and not self.tools:
            missing.append("tool calls")
        if json_schema and not self.json_schema:
            missing.append("JSON-schema output")
        return missing


def estimate_tokens(text: str) -> int:
    """About four UTF-8 bytes per token, rounded up: for servers that report no usage."""
    return -(-len(text.encode("utf-8")) // 4)


def estimated_usage(request: ChatRequest, reply: str) -> Usage:
    """Usage for a reply whose server reported none, flagged ``estimated``.

    The output estimate never exceeds ``max_tokens``, so it stays within what the
    cost cap reserved for the call.
    """
    prompt = sum(estimate_tokens(message.content) for message in request.messages)
    return Usage(prompt, min(estimate_tokens(reply), request.max_tokens), estimated=True)


@runtime_checkable
class Provider(Protocol):
    """A configured backend. One instance per provider per run, shared by its agents."""

    name: str  # as shown and recorded: "openai", "azure", "local", or a workflow-defined name
    kind: str  # "openai" | "azure" | "local" | "fake": which price table applies
    capabilities: (
        Capabilities  # what it can do (streaming, tool calls, JSON schema); see providers.kinds
    )

    async def complete(self, request: ChatRequest, on_text: TextCallback) -> ChatResponse: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Route:
    """Where one agent's calls go, decided without importing any SDK.

    ``provider`` is the name shown and recorded ("openai", "azure", "local", or
    a key of the workflow's ``providers:``); ``kind`` selects the implementation
    and the price table; ``model`` is what is sent (prefix removed, the Azure
    deployment name for Azure). ``priced_as`` is the model the user wrote when
    what is sent differs (an Azure deployment named in the environment), so
    prices can still be found under the model's own name.
    """

    provider: str
    kind: str  # "openai" | "azure" | "local" | "fake"
    model: str
    priced_as: str | None = None


__all__ = [
    "Capabilities",
    "ChatRequest",
    "ChatResponse",
    "Message",
    "Provider",
    "Route",
    "TextCallback",
    "estimate_tokens",
    "estimated_usage",
]
