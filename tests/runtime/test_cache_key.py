"""The response cache's key: every part that decides an answer changes it, nothing else does,
and the endpoint is named without its API key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agentops.providers.registry import ProviderRegistry
from agentops.runtime.cache import CallKeys, RequestKey, describe_difference
from agentops.runtime.messages import (
    ChatRequest,
    Message,
    ResponseFormat,
    ToolCall,
    ToolDefinition,
    assistant,
    system,
    tool_result,
    user,
)
from agentops.runtime.provider import Route
from agentops.workflow.loader import load_workflow_text

ENDPOINT = {
    "kind": "openai",
    "url": "http://127.0.0.1:9/v1",
    "deployment": None,
    "api_version": None,
    "form": "auto",
}
TOOL = ToolDefinition("add", "Add two numbers.", {"type": "object", "properties": {"a": {}}})
SCHEMA = ResponseFormat("answer", {"type": "object", "properties": {"x": {"type": "string"}}})
BASE = ChatRequest(
    model="gpt-4o-mini",
    messages=(
        system("be brief"),
        user("hello"),
        assistant("", (ToolCall("c1", "add", '{"a": 1}'),)),
        tool_result("c1", "2"),
    ),
    max_tokens=100,
    temperature=0.0,
    tools=(TOOL,),
    response_format=SCHEMA,
)


def key(request: ChatRequest = BASE, endpoint: dict[str, Any] = ENDPOINT) -> str:
    found = RequestKey.of(endpoint, request)
    assert found is not None
    return found.key


def with_message(index: int, message: Message) -> ChatRequest:
    messages = list(BASE.messages)
    messages[index] = message
    return replace(BASE, messages=tuple(messages))


CHANGES: dict[str, tuple[ChatRequest, dict[str, Any]]] = {
    "base URL": (BASE, {**ENDPOINT, "url": "http://127.0.0.1:10/v1"}),
    "deployment": (BASE, {**ENDPOINT, "deployment": "prod"}),
    "API version": (BASE, {**ENDPOINT, "api_version": "2024-10-21"}),
    "request form": (BASE, {**ENDPOINT, "form": "json_object"}),
    "endpoint kind": (BASE, {**ENDPOINT, "kind": "azure"}),
    "model": (replace(BASE, model="gpt-4o"), ENDPOINT),
    "system text": (with_message(0, system("be long")), ENDPOINT),
    "user text": (with_message(1, user("hello!")), ENDPOINT),
    "role": (with_message(1, Message("system", "hello")), ENDPOINT),
    "tool call asked": (
        with_message(2, assistant("", (ToolCall("c1", "add", '{"a": 2}'),))),
        ENDPOINT,
    ),
    "tool call id": (with_message(3, tool_result("c2", "2")), ENDPOINT),
    "tool result": (with_message(3, tool_result("c1", "3")), ENDPOINT),
    "one message more": (replace(BASE, messages=(*BASE.messages, user("more"))), ENDPOINT),
    "message order": (
        replace(BASE, messages=(BASE.messages[1], BASE.messages[0], *BASE.messages[2:])),
        ENDPOINT,
    ),
    "temperature": (replace(BASE, temperature=0.7), ENDPOINT),
    "temperature unset": (replace(BASE, temperature=None), ENDPOINT),
    "max_tokens": (replace(BASE, max_tokens=101), ENDPOINT),
    "tool name": (replace(BASE, tools=(replace(TOOL, name="plus"),)), ENDPOINT),
    "tool description": (replace(BASE, tools=(replace(TOOL, description="Add."),)), ENDPOINT),
    "tool schema": (
        replace(BASE, tools=(replace(TOOL, parameters={"type": "object"}),)),
        ENDPOINT,
    ),
    "no tools": (replace(BASE, tools=()), ENDPOINT),
    "output schema": (
        replace(BASE, response_format=replace(SCHEMA, schema={"type": "object"})),
        ENDPOINT,
    ),
    "schema strictness": (
        replace(BASE, response_format=replace(SCHEMA, strict=False)),
        ENDPOINT,
    ),
    "schema name": (replace(BASE, response_format=replace(SCHEMA, name="other")), ENDPOINT),
    "no schema": (replace(BASE, response_format=None), ENDPOINT),
}


@pytest.mark.parametrize("part", sorted(CHANGES))
def test_changing_any_part_changes_the_key(part: str) -> None:
    request, endpoint = CHANGES[part]
    assert key(request, endpoint) != key()


def test_every_change_makes_a_key_of_its_own() -> None:
    keys = {key(request, endpoint) for request, endpoint in CHANGES.values()}
    assert len(keys) == len(CHANGES) and key() not in keys


def test_identical_requests_share_a_key_and_what_decides_no_answer_is_left_out() -> None:
    same = replace(BASE, timeout=5.0, agent="another", stream=False)
    rebuilt = ChatRequest(
        model="gpt-4o-mini",
        messages=tuple(
            Message(m.role, m.content, m.tool_calls, m.tool_call_id) for m in BASE.messages
        ),
        max_tokens=100,
        temperature=0.0,
        tools=(
            ToolDefinition("add", "Add two numbers.", {"properties": {"a": {}}, "type": "object"}),
        ),
        response_format=ResponseFormat("answer", dict(SCHEMA.schema)),
    )
    assert key(same) == key() == key(rebuilt)
    assert len(key()) == 64


def test_a_part_that_is_not_json_gives_no_key_rather_than_a_partial_one() -> None:
    odd = replace(BASE, tools=(replace(TOOL, parameters={"type": object()}),))
    assert RequestKey.of(ENDPOINT, odd) is None
    assert RequestKey.of(ENDPOINT, replace(BASE, temperature=float("nan"))) is None


def test_the_digest_names_what_differs() -> None:
    before = RequestKey.of(ENDPOINT, BASE)
    after = RequestKey.of(
        ENDPOINT, replace(with_message(1, user("bye")), model="gpt-4o", temperature=0.5)
    )
    assert before is not None and after is not None
    said = describe_difference(before.parts, after.parts)
    assert "model 'gpt-4o' (recorded 'gpt-4o-mini')" in said
    assert "message 2 (user)" in said
    assert "temperature 0.5 (recorded 0.0)" in said
    tools = RequestKey.of(ENDPOINT, replace(BASE, tools=()))
    assert tools is not None
    assert describe_difference(before.parts, tools.parts) == "the tools offered"


def test_the_endpoint_is_named_without_its_api_key() -> None:
    text = """
name: keys
providers:
  one: {base_url: "http://127.0.0.1:9/v1", api_key_env: KEY_ONE}
  two: {base_url: "http://127.0.0.1:9/v1", api_key_env: KEY_TWO}
agents:
  - {name: a, model: m, provider: one, task: t}
  - {name: b, model: m, provider: two, task: t}
"""
    workflow = load_workflow_text(text, filename="keys.yaml").workflow
    registry = ProviderRegistry(workflow, env={"KEY_ONE": "sk-first-secret", "KEY_TWO": "sk-2nd"})
    one = registry.call_identity(Route("one", "openai", "m"))
    two = registry.call_identity(Route("two", "openai", "m"))
    assert one == two == ENDPOINT
    assert "sk-" not in repr(one)
    keys = CallKeys({"one": one, "two": two})
    request = replace(BASE, model="m")
    first = keys.key(Route("one", "openai", "m"), request)
    second = keys.key(Route("two", "openai", "m"), request)
    assert first is not None and second is not None and first.key == second.key
