"""What every tool is to the runtime: a name, a JSON schema, and a call that returns text.

A failure the model should see (an exception in the tool, a timeout, invalid
arguments, an MCP ``isError`` result, a server that went away) is a
``ToolCallError``: its message goes back to the model as the tool's result,
unless the tool says ``on_tool_error: fail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

RESULT_LIMIT = 100_000  # characters of one result sent back to the model
TRUNCATED = "\n[truncated: {omitted} more characters]"


class ToolCallError(Exception):
    """A tool call failed; the message says how, for the model and the history."""


class Tool(Protocol):
    """One callable tool. ``label`` is the name users write (``add``, ``kb.lookup``)."""

    label: str
    base_name: str  # the name before any prefix: the function's key, or the MCP tool's own name
    description: str
    parameters: Mapping[str, Any]
    timeout: float

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        """The result as text for the model; raises ToolCallError."""
        ...


def truncate(text: str, limit: int = RESULT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED.format(omitted=len(text) - limit)


__all__ = ["RESULT_LIMIT", "Tool", "ToolCallError", "truncate"]
