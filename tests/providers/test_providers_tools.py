"""Tool calls at the provider boundary: the OpenAI provider sends ``tools`` with streaming
on and assembles ``delta.tool_calls``; the test server and FakeProvider script them."""

from __future__ import annotations

import asyncio
import json

import agentops
from agentops.providers.endpoints import Endpoint
from agentops.providers.fake import FakeProvider, tool_call
from agentops.providers.openai import OpenAIProvider
from agentops.runtime.events import AgentStatus
from agentops.runtime.messages import (
    ChatRequest,
    ResponseFormat,
    ToolCall,
    ToolDefinition,
    assistant,
    tool_result,
    user,
)
from agentops.testing.server import OpenAITestServer, ScriptedReply, ScriptedToolCall
from agentops.workflow.spec import Workflow
from tests.support.provider import complete

ADD = ToolDefinition(
    "add", "Add two numbers.", {"type": "object", "properties": {"a": {"type": "integer"}}}
)


def endpoint(server: OpenAITestServer) -> Endpoint:
    return Endpoint("test", "openai", "sk-x", "TEST", base_url=server.base_url)


def test_streamed_tool_calls_are_assembled_from_their_fragments() -> None:
    reply = ScriptedReply(
        "let me check",
        (ScriptedToolCall("add", {"a": 1, "b": [2, 3]}), ScriptedToolCall("lookup", '{"key": "al')),
    )
    with OpenAITestServer(reply=lambda body: reply) as server:
        provider = OpenAIProvider(endpoint(server))

        async def call() -> object:
            try:
                return await complete(provider, ChatRequest("m", (user("hi"),), 50, tools=(ADD,)))
            finally:
                await provider.aclose()

        outcome = asyncio.run(call())
        body = server.requests[0].body
    response = outcome.response  # type: ignore[attr-defined]
    assert response.finish_reason == "tool_calls" and response.text == "let me check"
    assert response.tool_calls == (
        ToolCall("call_1", "add", json.dumps({"a": 1, "b": [2, 3]})),
        ToolCall(
            "call_2", "lookup", '{"key": "al'
        ),  # sent as written: invalid JSON is the tool's error to report
    )
    assert body["stream"] is True
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two numbers.",
                "parameters": ADD.parameters,
            },
        }
    ]


def test_a_conversation_with_tool_results_is_sent_as_openai_messages() -> None:
    call = ToolCall("call_9", "add", '{"a": 1}')
    messages = (user("hi"), assistant("", (call,)), tool_result("call_9", "2"))
    schema = ResponseFormat("answer", {"type": "object", "properties": {"n": {"type": "integer"}}})
    with OpenAITestServer() as server:
        provider = OpenAIProvider(endpoint(server))

        async def call_once() -> None:
            try:
                await complete(
                    provider, ChatRequest("m", messages, 20, tools=(ADD,), response_format=schema)
                )
            finally:
                await provider.aclose()

        asyncio.run(call_once())
        body = server.requests[0].body
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1}'},
            }
        ],
    }
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "2"}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "answer"


def test_a_request_without_tools_sends_no_tool_fields() -> None:
    with OpenAITestServer() as server:
        provider = OpenAIProvider(endpoint(server))

        async def call_once() -> None:
            try:
                await complete(provider, ChatRequest("m", (user("hi"),), 5))
            finally:
                await provider.aclose()

        asyncio.run(call_once())
        assert (
            "tools" not in server.requests[0].body
            and "response_format" not in server.requests[0].body
        )


def test_fake_provider_scripts_tool_turns(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "fake_tools.py").write_text("def double(n: int) -> int:\n    return 2 * n\n")
    monkeypatch.chdir(tmp_path)
    workflow = Workflow.model_validate(
        {
            "name": "fake_tools",
            "tools": {"double": {"python": "fake_tools:double"}},
            "agents": [
                {"name": "a", "model": "m", "task": "t", "tools": ["double"]},
                {"name": "b", "model": "m", "task": "t"},
            ],
        }
    )
    fake = FakeProvider(
        {"a": [[tool_call("double", n=2), tool_call("double", n=5)], "4 and 10"], "b": "plain"}
    )
    result = agentops.run(workflow, provider=fake)
    assert result.ok, {n: a.error for n, a in result.agents.items()}
    assert result.agents["a"].output == "4 and 10"
    assert sorted(c.result or "" for c in result.agents["a"].tool_calls) == ["10", "4"]
    second = fake.requests_for("a")[1]
    assert [m.role for m in second.messages] == ["user", "assistant", "tool", "tool"]
    assert [d.name for d in fake.requests_for("a")[0].tools] == ["double"]
    assert fake.requests_for("b")[0].tools == ()
    assert result.agents["b"].status is AgentStatus.SUCCEEDED
