"""The kinds of provider, in one table: their names and what each can do.

A workflow names a kind as ``providers.NAME.type``, and the built-in ones are
also provider names (``provider: local``, ``openai:gpt-4o``). Each kind
declares its ``Capabilities``; validation checks every agent against the
capabilities of the provider it is routed to, before anything runs, so an
agent with tools on a provider that cannot call them is an error naming the
limit, not a failure mid-run. A provider object declares its own
(``Provider.capabilities``): a test double or a user's provider may differ
from its kind.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

ProviderKind = Literal["openai", "azure", "local"]
"""The kinds a workflow may name; ``PROVIDER_KINDS`` has one row for each."""


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


EVERYTHING = Capabilities(streaming=True, tools=True, json_schema=True)

PROVIDER_KINDS: dict[ProviderKind, Capabilities] = {
    "openai": EVERYTHING,  # OpenAI, and compatible servers that implement function calling
    "azure": EVERYTHING,
    "local": Capabilities(
        streaming=True,
        tools=False,
        json_schema=True,  # the worker constrains sampling with llama.cpp's JSON-schema grammar
        limits=(
            "llama-cpp-python's chat templates ignore tools unless one tool is forced; to give a local "
            "model tools, serve it with `python -m llama_cpp.server --model FILE --chat_format "
            "chatml-function-calling` and use it as an OpenAI-compatible provider"
        ),
    ),
}

BUILTIN_PROVIDERS: tuple[ProviderKind, ...] = typing.get_args(ProviderKind)
"""Provider names that need no ``providers:`` entry, in the order messages list them."""


def capabilities_of(kind: str) -> Capabilities:
    """The capabilities of a kind; a kind outside the table (a test double's) is not limited."""
    return _BY_NAME.get(kind, EVERYTHING)


_BY_NAME: dict[str, Capabilities] = {str(kind): row for kind, row in PROVIDER_KINDS.items()}


__all__ = [
    "BUILTIN_PROVIDERS",
    "EVERYTHING",
    "PROVIDER_KINDS",
    "Capabilities",
    "ProviderKind",
    "capabilities_of",
]
