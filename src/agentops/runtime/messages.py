"""What is said to a model and what it answers: typed messages, tool calls, requests, responses.

The core types every layer shares (the engine, one agent's run, the budget,
templates, providers and the tools), with no SDK and no pydantic behind them:

- ``Message``: one message of a conversation, with its ``role``:
  ``system`` and ``user`` carry text; ``assistant`` carries text and the
  ``tool_calls`` the model asked for; ``tool`` carries one tool's result,
  answering the call named by ``tool_call_id``. Build them with ``system()``,
  ``user()``, ``assistant()`` and ``tool_result()``.
- ``ToolCall``: a call the model asked for (its id, the tool's name, and the
  arguments as the JSON text it wrote). ``ToolDefinition``: a tool as offered
  to the model (name, description, JSON schema of its arguments).
- ``ResponseFormat``: a JSON schema the answer must follow (structured output).
- ``ChatRequest`` / ``ChatResponse``: one call to a provider and its answer.

Usage (token counts) is in ``usage``, a leaf both this module and ``events`` import.

All of them are values: never changed once made (``dataclasses.replace`` makes a changed
copy). ``Message``, ``ChatRequest`` and ``ChatResponse`` are not frozen, though: one of
each is made for every model call, and a frozen dataclass pays ``object.__setattr__`` for
every field (a request 0.96 µs to make instead of 0.19 µs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agentops.runtime.usage import Usage

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = str  # "stop", "length", "tool_calls", "content_filter", or a provider's own


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for. ``arguments`` is JSON text, exactly as the model wrote it."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON; raises ValueError when the model wrote invalid JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as offered to the model: a name legal for every provider, and a JSON schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of type "object"


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: the answer must be JSON following ``schema``."""

    name: str
    schema: Mapping[str, Any]
    strict: bool = (
        True  # False: the schema breaks a strict-mode rule (workflow.schemas.strict_mode_problem)
    )


@dataclass(slots=True)
class Message:
    """One message. ``tool_calls`` only on ``assistant``; ``tool_call_id`` only (and always) on ``tool``."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD: a model's or a tool's text may hold
    one (JSON's ``"\\ud800"``), and no UTF-8 encoder, HTTP body or SQLite column accepts it."""
    if text.isascii():  # a flag of the string: most text is checked without a copy
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def system(text: str) -> Message:
    return Message("system", text)


def user(text: str) -> Message:
    return Message("user", text)


def assistant(text: str, tool_calls: tuple[ToolCall, ...] = ()) -> Message:
    return Message("assistant", text, tool_calls=tool_calls)


def tool_result(call_id: str, content: str) -> Message:
    """The result of the call ``call_id``, as the model will read it (an error is a result too)."""
    return Message("tool", content, tool_call_id=call_id)


@dataclass(slots=True)
class ChatRequest:
    model: str  # the model name as the provider knows it (prefix already removed)
    messages: tuple[Message, ...]
    max_tokens: int  # always set: the cost cap depends on it
    temperature: float | None = None
    timeout: float | None = None  # seconds for this attempt; the engine also enforces it
    agent: str | None = None  # the agent's name, for providers that script by agent (FakeProvider)
    tools: tuple[ToolDefinition, ...] = ()  # offered to the model; empty: a plain answer
    response_format: ResponseFormat | None = None
    stream: bool = True  # False: nobody watches tokens; a provider may answer in one piece


@dataclass(slots=True)
class ChatResponse:
    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # non-empty: the model wants these run before it answers
    model: str | None = None  # the model that answered, as the server named it (None: not reported)
    refusal: str | None = (
        None  # structured output: the model declined, saying why (OpenAI's message.refusal)
    )

    def with_valid_text(self) -> ChatResponse:
        """This response with every lone surrogate replaced (``valid_text``): itself when it has none."""
        if self.refusal is None and not self.tool_calls and self.text.isascii():
            return self  # the common answer, checked without a call
        text = valid_text(self.text)
        refusal = None if self.refusal is None else valid_text(self.refusal)
        calls = self.tool_calls
        if calls:
            calls = tuple(
                ToolCall(call.id, valid_text(call.name), valid_text(call.arguments))
                for call in calls
            )
        unchanged = text is self.text and refusal is self.refusal and calls == self.tool_calls
        return self if unchanged else replace(self, text=text, refusal=refusal, tool_calls=calls)


__all__ = [
    "ChatRequest",
    "ChatResponse",
    "FinishReason",
    "Message",
    "ResponseFormat",
    "Role",
    "ToolCall",
    "ToolDefinition",
    "assistant",
    "system",
    "tool_result",
    "user",
    "valid_text",
]
