"""The spans a run makes, read from the SDK's in-memory exporter: structure, attributes,
times, errors, content capture, resume links and the tool-call hook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentops
from agentops import FakeProvider
from agentops.errors import BadRequestError, ServerError
from agentops.providers.endpoints import Endpoint
from agentops.runtime.engine import Engine
from agentops.runtime.events import AttemptSucceeded, Event, RunStatus, WorkflowResult
from agentops.runtime.provider import Route
from agentops.testing.server import OpenAITestServer
from agentops.tracing import capture_content, tracing_requested
from agentops.tracing.session import TracingSession
from agentops.tracing.targets import chat_target
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, workflow_on
from tests.support.store import rows
from tests.support.tracing import SpanView, by_operation, check_tree, view_of

KEY = "sk-fake-provider-key-never-exported"


def flow(agents: list[dict[str, Any]], **policies: Any) -> LoadedWorkflow:
    document = {
        "name": "traced",
        "policies": {
            "retries": 2,
            "backoff": {"base": 0.0, "max": 0.0},
            "max_tokens": 64,
            **policies,
        },
        "agents": [{"model": "gpt-4o-mini", "task": f"task of {a['name']}", **a} for a in agents],
    }
    return load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="traced.yaml")


def traced_run(
    source: LoadedWorkflow | int,
    db: Path,
    *,
    provider: Any = None,
    content: bool = False,
    **options: Any,
) -> tuple[WorkflowResult, list[SpanView]]:
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory", content=content)
    try:
        if isinstance(source, int):
            result = agentops.resume(source, db=db, provider=provider, tracing=session, **options)
        else:
            result = agentops.run(source, db=db, provider=provider, tracing=session, **options)
    finally:
        session.close()
    return result, [view_of(span) for span in exporter.get_finished_spans()]


THREE = [
    {"name": "research", "temperature": 0.2},
    {"name": "critic", "model": "gpt-4o"},
    {"name": "summary", "depends_on": ["research", "critic"]},
]


def test_a_run_is_one_trace_workflow_agents_and_calls(tmp_path: Path) -> None:
    fake = FakeProvider({"*": "an answer"}, errors={"research": [ServerError("busy", status=503)]})
    result, spans = traced_run(flow(THREE), tmp_path / "h.db", provider=fake)
    assert result.ok
    root, agents, chats = check_tree(spans)

    assert root.name == "invoke_workflow traced"
    assert root.attributes["gen_ai.workflow.name"] == "traced"
    assert root.attributes["agentops.workflow_run.id"] == result.workflow_run_id
    assert root.attributes["agentops.workflow_run.status"] == "succeeded"
    assert root.status == "UNSET"
    assert root.resource["service.name"] == "agentops"
    assert set(agents) == {"research", "critic", "summary"}
    assert [len(chats[name]) for name in ("research", "critic", "summary")] == [2, 1, 1]

    failed, retried = chats["research"]
    assert failed.status == "ERROR" and failed.attributes["error.type"] == "ServerError"
    assert failed.attributes["http.response.status_code"] == 503
    assert "busy" in failed.status_message
    assert retried.status == "UNSET" and "error.type" not in retried.attributes
    assert failed.end <= retried.start  # the retry comes after the failure

    chat = retried.attributes
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.provider.name"] == "fake"
    assert chat["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat["gen_ai.request.max_tokens"] == 64
    assert chat["gen_ai.request.temperature"] == 0.2
    assert chat["gen_ai.response.model"] == "gpt-4o-mini"
    assert chat["gen_ai.response.finish_reasons"] == ["stop"]
    assert "gen_ai.request.temperature" not in chats["critic"][0].attributes  # none was sent
    assert "gen_ai.output.type" not in chat  # no output schema

    # Real times: the spans are the engine's measurements, not when events arrived.
    for name, agent_result in result.agents.items():
        agent = agents[name]
        assert agent.start == int(agent_result.started_at * 1e9)  # type: ignore[operator]
        assert agent.end == int(agent_result.finished_at * 1e9)  # type: ignore[operator]
        for span, attempt in zip(chats[name], agent_result.attempts, strict=True):
            assert span.start == int(attempt.started_at * 1e9)
            assert span.attributes["gen_ai.usage.input_tokens"] == attempt.usage.input_tokens
            assert span.attributes["gen_ai.usage.output_tokens"] == attempt.usage.output_tokens
        assert agent.attributes["gen_ai.usage.input_tokens"] == agent_result.usage.input_tokens
        assert agent.attributes["agentops.agent.status"] == "succeeded"
        assert agent.attributes["agentops.agent.attempts"] == len(agent_result.attempts)
    assert root.start == int(result.started_at * 1e9) and root.end == int(result.finished_at * 1e9)
    assert root.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens

    # The history records the trace, so a resume (or a person) can find it.
    recorded = rows(tmp_path / "h.db", "SELECT trace_id, trace_span_id FROM workflow_runs")[0]
    assert (recorded["trace_id"], recorded["trace_span_id"]) == (root.trace_id, root.span_id)


def test_failures_skips_and_the_run_status_show_as_errors(tmp_path: Path) -> None:
    agents = [{"name": "broken"}, {"name": "after", "depends_on": "broken"}, {"name": "fine"}]
    fake = FakeProvider(
        {"*": "ok"}, errors={"broken": [BadRequestError("no such thing", status=400)]}
    )
    result, spans = traced_run(flow(agents), tmp_path / "h.db", provider=fake)
    assert result.status is RunStatus.FAILED
    root, spanned, chats = check_tree(spans)
    assert set(spanned) == {"broken", "fine"}  # "after" was skipped: it never ran
    broken = spanned["broken"]
    assert broken.status == "ERROR" and broken.attributes["error.type"] == "BadRequestError"
    assert broken.attributes["agentops.agent.status"] == "failed"
    assert [c.attributes["error.type"] for c in chats["broken"]] == [
        "BadRequestError"
    ]  # permanent: no retry
    assert spanned["fine"].status == "UNSET"
    assert root.status == "ERROR" and root.attributes["error.type"] == "failed"
    assert root.status_message == "2 of 3 agents did not succeed"


def test_an_interrupted_call_is_a_cancelled_chat_span(tmp_path: Path) -> None:
    fake = FakeProvider(
        {"*": "ok"}, latency=lambda request: 30.0 if request.agent == "slow" else 0.0
    )

    def stop_soon(engine: Engine) -> None:
        asyncio.get_running_loop().call_later(0.3, engine.stop, "interrupted by SIGTERM")

    result, spans = traced_run(
        flow([{"name": "quick"}, {"name": "slow"}, {"name": "later", "depends_on": "slow"}]),
        tmp_path / "h.db",
        provider=fake,
        control=stop_soon,
    )
    assert result.status is RunStatus.INTERRUPTED
    root, agents, chats = check_tree(spans)
    assert set(agents) == {"quick", "slow"}
    (cut,) = chats["slow"]
    assert (
        cut.attributes["error.type"] == "cancelled"
        and cut.status_message == "interrupted by SIGTERM"
    )
    assert agents["slow"].attributes["error.type"] == "cancelled"
    assert root.attributes["error.type"] == "interrupted"


def test_prompts_and_outputs_are_exported_only_when_asked(tmp_path: Path) -> None:
    agents = [{"name": "writer", "system": "Be brief.", "task": "Describe tides."}]
    _, quiet = traced_run(
        flow(agents), tmp_path / "a.db", provider=FakeProvider({"*": "Tides rise."})
    )
    for span in quiet:
        assert not {"gen_ai.input.messages", "gen_ai.output.messages"} & set(span.attributes)
        assert "tides" not in repr(span.attributes).lower()

    _, loud = traced_run(
        flow(agents), tmp_path / "b.db", provider=FakeProvider({"*": "Tides rise."}), content=True
    )
    (chat,) = by_operation(loud, "chat")
    assert json.loads(str(chat.attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Describe tides."}]},
    ]
    assert json.loads(str(chat.attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Tides rise."}],
            "finish_reason": "stop",
        }
    ]


def test_content_capture_reads_the_standard_variable() -> None:
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    assert capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": " True "})
    assert not capture_content({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"})
    assert not capture_content({})


def test_a_resumed_run_links_to_the_trace_it_continues(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    agents = [{"name": "first"}, {"name": "second", "depends_on": "first", "retries": 0}]
    failing = FakeProvider({"*": "ok"}, errors={"second": [BadRequestError("bad", status=400)]})
    first, before = traced_run(flow(agents), db, provider=failing)
    assert first.status is RunStatus.FAILED
    original, _, _ = check_tree(before)

    again, after = traced_run(first.workflow_run_id or 0, db, provider=FakeProvider({"*": "ok"}))
    assert again.ok
    root, spanned, _ = check_tree(after)
    assert root.trace_id != original.trace_id  # a run is one trace ...
    assert root.links == [(original.trace_id, original.span_id)]  # ... linked to the one it resumes
    assert root.attributes["agentops.workflow_run.resumed_from"] == first.workflow_run_id
    assert set(spanned) == {"second"}  # "first" was reused, not run


def test_the_tool_call_hook_makes_an_execute_tool_span_under_its_agent(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    session = TracingSession(exporter, endpoint="memory")
    tracer = session.run_tracer({})

    def tools(event: Event) -> None:  # stands in for the engine's tool events
        if isinstance(event, AttemptSucceeded):
            at = event.attempt.started_at
            tracer.record_tool_call(
                "a",
                "search",
                call_id="call_1",
                started_at=at,
                finished_at=at + 0.01,
                arguments='{"q": "secret words"}',
                result="found",
            )
            tracer.record_tool_call(
                "a",
                "fetch",
                call_id="call_2",
                started_at=at,
                finished_at=at + 0.02,
                error_type="ToolError",
                error="timed out",
            )

    agentops.run(
        flow([{"name": "a"}]),
        provider=FakeProvider({"*": "ok"}),
        subscribers=[tracer, tools],
        otel=False,
    )
    session.close()
    spans = [view_of(s) for s in exporter.get_finished_spans()]
    _, agents, _ = check_tree(spans)
    search, fetch = sorted(
        by_operation(spans, "execute_tool"), key=lambda s: s.name == "execute_tool fetch"
    )
    assert search.name == "execute_tool search" and search.parent_id == agents["a"].span_id
    assert search.attributes["gen_ai.tool.name"] == "search"
    assert search.attributes["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in search.attributes  # content is off
    assert fetch.status == "ERROR" and fetch.attributes["error.type"] == "ToolError"


def test_chat_spans_name_the_server_behind_an_openai_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with OpenAITestServer() as server:
        _, spans = traced_run(workflow_on(server, [{"name": "a"}]), tmp_path / "h.db")
    (chat,) = by_operation(spans, "chat")
    assert chat.attributes["gen_ai.provider.name"] == "test"  # the endpoint's name
    assert chat.attributes["server.address"] == "127.0.0.1"
    assert chat.attributes["server.port"] == int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    assert chat.attributes["gen_ai.response.model"] == "gpt-4o-mini"  # as the server named it
    assert TEST_KEY not in repr([s.attributes for s in spans])


@pytest.mark.parametrize(
    ("kind", "url", "expected"),
    [
        ("openai", "https://api.openai.com/v1", ("openai", "api.openai.com", 443)),
        ("azure", "https://eu.openai.azure.com", ("azure.ai.openai", "eu.openai.azure.com", 443)),
        ("openai", "http://user:pw@gpu-box:8000/v1", ("vllm", "gpu-box", 8000)),
        ("openai", "http://127.0.0.1/v1", ("vllm", "127.0.0.1", 80)),
    ],
)
def test_provider_names_follow_the_conventions(
    kind: str, url: str, expected: tuple[str, str, int]
) -> None:
    endpoint = Endpoint(
        name="vllm",
        kind=kind,
        api_key=KEY,
        key_source="X",
        base_url=url if kind == "openai" else None,
        azure_endpoint=url if kind == "azure" else None,
    )
    target = chat_target(Route("vllm", kind, "m"), endpoint)
    assert (target.provider_name, target.server_address, target.server_port) == expected
    assert chat_target(Route("local", "local", "smollm2"), None).provider_name == "local"


def test_tracing_is_on_with_the_flag_or_an_endpoint_and_off_when_disabled() -> None:
    assert not tracing_requested(None, {})
    assert tracing_requested(True, {})
    assert tracing_requested(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_requested(
        None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    )
    assert not tracing_requested(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": " "})
    assert not tracing_requested(True, {"OTEL_SDK_DISABLED": "true"})
    assert not tracing_requested(
        None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}
    )


def test_a_call_with_an_output_schema_is_a_json_output(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    fake = FakeProvider({"planner": ["not json", '{"title": "x"}']})
    result, spans = traced_run(
        flow([{"name": "planner", "output": {"schema": schema}}]), tmp_path / "h.db", provider=fake
    )
    assert result.ok
    _, _, chats = check_tree(spans)
    assert [chat.attributes["gen_ai.output.type"] for chat in chats["planner"]] == [
        "json",
        "json",
    ]  # the re-ask too


def test_a_tool_loop_reports_each_tool_call_as_an_execute_tool_span(tmp_path: Path) -> None:
    from agentops.providers.fake import tool_call

    (tmp_path / "spantools.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    document = {
        "name": "traced_tools",
        "tools": {"add": {"python": "spantools:add"}},
        "agents": [{"name": "a", "model": "gpt-4o-mini", "task": "add things", "tools": ["add"]}],
    }
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(yaml.safe_dump(document, sort_keys=False))
    fake = FakeProvider(
        {"a": [tool_call("add", call_id="call_7", a=2, b=3), tool_call("add", a="x", b=1), "5"]}
    )

    result, spans = traced_run(agentops.load_workflow(flow_file), tmp_path / "h.db", provider=fake)

    assert result.ok, result.agents["a"].error
    _, agents, _ = check_tree(spans)
    calls = sorted(by_operation(spans, "execute_tool"), key=lambda span: span.start)
    assert [span.name for span in calls] == ["execute_tool add", "execute_tool add"]
    assert all(span.parent_id == agents["a"].span_id for span in calls)
    assert calls[0].attributes["gen_ai.tool.call.id"] == "call_7" and calls[0].status != "ERROR"
    assert (
        calls[1].status == "ERROR" and calls[1].attributes["error.type"] == "failed"
    )  # invalid argument
    assert len(by_operation(spans, "chat")) == 3  # one chat span per turn
