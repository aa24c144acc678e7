"""Model backends. Import the concrete ones lazily: they pull in heavy SDKs."""

from .base import ChatRequest, ChatResponse, Message, Provider, Route, TextCallback

__all__ = ["ChatRequest", "ChatResponse", "Message", "Provider", "Route", "TextCallback"]
