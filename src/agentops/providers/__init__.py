"""Model backends behind one small protocol (``base.Provider``).

``base`` is light and imported eagerly. The registry, the fake and the
concrete providers are loaded on first use (PEP 562): ``openai`` and
``llama_cpp`` are imported only when such a provider is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import ChatRequest, ChatResponse, Message, Provider, Route, TextCallback

if TYPE_CHECKING:
    from .fake import FakeProvider
    from .registry import ProviderRegistry

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agentops.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
