"""Model backends: implementations of the runtime's provider protocol (``runtime.provider``).

The protocol's names are re-exported here eagerly (they are light). The registry, the fake
and the concrete providers are loaded on first use (PEP 562): ``openai`` and ``llama_cpp``
are imported only when such a provider is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.lazy import lazy_getattr as _lazy_getattr
from agentops.runtime.provider import (
    ChatRequest,
    ChatResponse,
    Message,
    Provider,
    Route,
    TextCallback,
)

if TYPE_CHECKING:
    from agentops.providers.fake import FakeProvider
    from agentops.providers.registry import ProviderRegistry

_LAZY = {
    "FakeProvider": ".fake",
    "ProviderRegistry": ".registry",
}

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "FakeProvider",
    "Message",
    "Provider",
    "ProviderRegistry",
    "Route",
    "TextCallback",
]


__getattr__ = _lazy_getattr(__name__, _LAZY)
