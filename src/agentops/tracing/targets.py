"""Where each provider's calls go, as the GenAI semantic conventions name it.

``gen_ai.provider.name`` is ``openai`` for api.openai.com, ``azure.ai.openai`` for
Azure OpenAI, and the endpoint's own name for any other OpenAI-compatible server
(``ollama``, ``vllm``; the model's vendor is unknown there). ``server.address`` and
``server.port`` come from the endpoint's URL, host and port only: never its path,
query or user info, and never the key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentops.providers.endpoints import Endpoint
from agentops.runtime.provider import Route

OPENAI_HOST = "api.openai.com"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ChatTarget:
    provider_name: str  # gen_ai.provider.name
    server_address: str | None = None
    server_port: int | None = None


def chat_targets(
    routes: Iterable[Route], endpoint_of: Callable[[Route], Endpoint | None]
) -> dict[str, ChatTarget]:
    """The target of every provider in ``routes``, by provider name."""
    targets: dict[str, ChatTarget] = {}
    for route in routes:
        if route.provider not in targets:
            targets[route.provider] = chat_target(route, endpoint_of(route))
    return targets


def chat_target(route: Route, endpoint: Endpoint | None) -> ChatTarget:
    """``endpoint`` is None for providers without one: the local model, test overrides."""
    if endpoint is None:
        return ChatTarget(route.provider)
    parts = urlsplit(endpoint.url)
    host = parts.hostname
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port out of range: the request fails on its own; the span just lacks it
        port = None
    if endpoint.kind == "azure":
        name = "azure.ai.openai"
    elif host == OPENAI_HOST:
        name = "openai"
    else:
        name = endpoint.name
    return ChatTarget(name, host, port if host else None)


__all__ = ["ChatTarget", "chat_target", "chat_targets"]
