"""What each kind of provider can do, in one table (``PROVIDER_KINDS``).

The kinds' names are the workflow's (``agentops.workflow.provider_kinds``), and
``Capabilities`` is the provider protocol's (``agentops.runtime.provider``). A
workflow names a kind as ``providers.NAME.type``, and the built-in ones are
also provider names (``provider: local``, ``openai:gpt-4o``). Each kind
declares its ``Capabilities``; validation checks every agent against the
capabilities of the provider it is routed to, before anything runs, so an
agent with tools on a provider that cannot call them is an error naming the
limit, not a failure mid-run. A provider object declares its own
(``Provider.capabilities``): a test double or a user's provider may differ
from its kind.
"""

from __future__ import annotations

from agentops.runtime.provider import Capabilities
from agentops.workflow.provider_kinds import ProviderKind

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


def capabilities_of(kind: str) -> Capabilities:
    """The capabilities of a kind; a kind outside the table (a test double's) is not limited."""
    return _BY_NAME.get(kind, EVERYTHING)


_BY_NAME: dict[str, Capabilities] = {str(kind): row for kind, row in PROVIDER_KINDS.items()}


__all__ = ["EVERYTHING", "PROVIDER_KINDS", "capabilities_of"]
