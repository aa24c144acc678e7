"""Traces end to end: real ``agentops`` processes call the OpenAI-compatible test server and
export over real OTLP (HTTP, and gRPC) to a receiver on 127.0.0.1 that decodes every
request with opentelemetry-proto. The spans are checked against the history database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.server import Fault, OpenAITestServer
from tests.support import free_port
from tests.support.reliability import (
    KEY,
    agent_of,
    agent_runs,
    attempts_of,
    cli_env,
    json_of,
    rows,
    run_agentops,
    start_agentops,
    task_for,
    wait_until,
    workflow_runs,
    write_workflow,
)
from tests.support.tracing import (
    OTLPReceiver,
    SilentListener,
    SpanView,
    by_operation,
    check_tree,
    views_of_request,
)

MARKER = "PURPLE-OCTOPUS-4471"  # in every task, so prompts (and the replies that quote them) are findable


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def agents(*names: str, **extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": n, "task": task_for(n, f"{MARKER} tell me about tides."), **extra.get(n, {})}
        for n in names
    ]


def traced_env(endpoint: str, **extra: str) -> dict[str, str]:
    return cli_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **extra)


def check_against_history(
    spans: list[SpanView], db: Path, workflow_run_id: int
) -> tuple[SpanView, dict[str, SpanView], dict[str, list[SpanView]]]:
    """Spans and the history tell the same story: the trace recorded with the run, one agent span per
    agent run that called a model, one chat span per attempt, the same tokens."""
    root, agent_spans, chats = check_tree(spans)
    run = rows(db, "SELECT * FROM workflow_runs WHERE id = ?", workflow_run_id)[0]
    assert (run["trace_id"], run["trace_span_id"]) == (root.trace_id, root.span_id)
    assert root.attributes["agentops.workflow_run.id"] == workflow_run_id
    called = {
        name: row
        for name, row in agent_runs(db, workflow_run_id).items()
        if row["started_at"] and not row["reused"]
    }
    assert set(agent_spans) == set(called)
    for name, row in called.items():
        span = agent_spans[name]
        assert span.attributes["gen_ai.usage.input_tokens"] == row["input_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == row["output_tokens"]
        assert span.attributes["agentops.agent.status"] == row["status"]
        attempts = attempts_of(db, row["id"])
        assert [int(c.attributes["agentops.attempt.number"]) for c in chats.get(name, [])] == [
            a["number"] for a in attempts
        ]
        for chat, attempt in zip(chats.get(name, []), attempts, strict=True):
            assert chat.attributes["gen_ai.usage.input_tokens"] == attempt["input_tokens"]
            assert chat.attributes["gen_ai.usage.output_tokens"] == attempt["output_tokens"]
            assert ("error.type" in chat.attributes) == (attempt["status"] != "succeeded")
    all_chats = by_operation(spans, "chat")
    assert (
        sum(int(c.attributes["gen_ai.usage.input_tokens"]) for c in all_chats)
        == run["input_tokens"]
    )
    assert (
        sum(int(c.attributes["gen_ai.usage.output_tokens"]) for c in all_chats)
        == run["output_tokens"]
    )
    return root, agent_spans, chats


def test_a_run_exports_its_trace_over_otlp_http(
    tmp_path: Path, server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    server.inject(
        Fault(kind="status", status=500), times=1, match=lambda body: agent_of(body) == "flaky"
    )
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents("research", "flaky", "summary", summary={"depends_on": ["research", "flaky"]}),
        policies={"max_tokens": 12, "temperature": 0.3},
    )
    db = tmp_path / "history.db"
    completed = run_agentops(
        "run",
        flow,
        "--db",
        db,
        "--json",
        env=traced_env(receiver.endpoint, OTEL_SERVICE_NAME="tide-checks"),
    )
    result = json_of(completed)
    assert result["status"] == "succeeded"
    assert completed.stderr.count("warning") == 0, completed.stderr

    assert receiver.paths and set(receiver.paths) == {"/v1/traces"}
    assert set(receiver.content_types) == {"application/x-protobuf"}
    root, _, chats = check_against_history(receiver.spans, db, result["workflow_run_id"])
    assert root.resource["service.name"] == "tide-checks"  # the SDK honours OTEL_SERVICE_NAME
    assert [c.attributes.get("error.type") for c in chats["flaky"]] == ["ServerError", None]
    assert chats["flaky"][0].attributes["http.response.status_code"] == 500
    chat = chats["research"][0].attributes
    assert chat["gen_ai.provider.name"] == "test"
    assert (chat["server.address"], chat["server.port"]) == (
        "127.0.0.1",
        int(server.base_url.split(":")[2].split("/")[0]),
    )
    assert (chat["gen_ai.request.max_tokens"], chat["gen_ai.request.temperature"]) == (12, 0.3)
    assert chat["gen_ai.response.model"] == "gpt-4o-mini" and chat[
        "gen_ai.response.finish_reasons"
    ] == ["stop"]

    raw = receiver.raw()
    assert KEY.encode() not in raw  # no API key, anywhere in what was sent
    assert MARKER.encode() not in raw  # no prompt and no output without the opt-in
    assert b"reply from" not in raw


def test_prompts_and_outputs_are_exported_with_the_opt_in_and_keys_still_are_not(
    tmp_path: Path, server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("writer"))
    env = traced_env(receiver.endpoint, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    json_of(run_agentops("run", flow, "--db", tmp_path / "h.db", "--json", env=env))
    (chat,) = by_operation(receiver.spans, "chat")
    sent = json.loads(str(chat.attributes["gen_ai.input.messages"]))
    assert sent == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": task_for("writer", f"{MARKER} tell me about tides.")}
            ],
        }
    ]
    answered = json.loads(str(chat.attributes["gen_ai.output.messages"]))
    assert answered[0]["role"] == "assistant" and answered[0]["parts"][0]["content"].startswith(
        "reply from"
    )
    assert KEY.encode() not in receiver.raw()


def test_a_fan_out_and_a_routing_decision_export_as_nested_spans_and_an_event(
    tmp_path: Path, server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    """40 items: the item spans hang under their agent's, one chat each, and every call the
    server answered is a chat span; the branch routed away is an event on the workflow span."""
    titles = [f"section {i}" for i in range(40)]
    server.answer_when("Outline a report", {"sections": [{"title": t} for t in titles]})
    server.answer_when("Classify the ticket", {"label": "feature"})
    label = {"type": "object", "properties": {"label": {"enum": ["bug", "feature"]}}}
    sections = {
        "type": "object",
        "properties": {
            "sections": {
                "type": "array",
                "items": {"type": "object", "properties": {"title": {"type": "string"}}},
            }
        },
        "required": ["sections"],
    }
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [
            {"name": "planner", "task": "Outline a report.", "output": {"schema": sections}},
            {"name": "writer", "for_each": "planner.output.sections", "task": "Write {{ item }}."},
            {"name": "triage", "task": "Classify the ticket.", "output": {"schema": label}},
            {
                "name": "fix_bug",
                "depends_on": "triage",
                "when": "triage.output.label == 'bug'",
                "task": "Fix it.",
            },
        ],
    )
    env = traced_env(receiver.endpoint, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    result = json_of(run_agentops("run", flow, "--db", tmp_path / "h.db", "--json", env=env))
    assert result["status"] == "succeeded"  # fix_bug was routed away: no failure

    spans = list(receiver.spans)
    root, agent_spans, chats = check_tree(spans)
    assert set(agent_spans) == {"planner", "writer", "triage", *(f"writer[{i}]" for i in range(40))}
    writer = agent_spans["writer"]
    assert writer.attributes["agentops.fan_out.item_count"] == 40
    assert writer.attributes["agentops.fan_out.succeeded"] == 40
    assert (
        writer.attributes["gen_ai.usage.output_tokens"]
        == result["agents"]["writer"]["output_tokens"]
    )
    for index, title in enumerate(titles):
        item = agent_spans[f"writer[{index}]"]
        assert item.attributes["agentops.item.index"] == index
        assert json.loads(str(item.attributes["agentops.item"])) == {"title": title}
        assert len(chats[f"writer[{index}]"]) == 1
    # Every request the server answered is one chat span, and the tokens add up to the run's.
    all_chats = by_operation(spans, "chat")
    assert len(all_chats) == len(server.requests) == 1 + 40 + 1
    assert (
        sum(int(c.attributes["gen_ai.usage.input_tokens"]) for c in all_chats)
        == result["input_tokens"]
    )
    ((name, _, routed),) = root.events
    assert name == "agentops.agent.skipped"
    assert routed["gen_ai.agent.name"] == "fix_bug" and routed["agentops.skip.cause"] == "routed"
    assert routed["agentops.decision.expression"] == "triage.output.label == 'bug'"
    assert routed["agentops.decision.held"] is False
    assert json.loads(str(routed["agentops.decision.values"])) == {"triage.output.label": "feature"}
    assert root.status == "UNSET"
    # The history tells the same story: each item's row, its span's tokens and status.
    items = rows(
        tmp_path / "h.db",
        "SELECT * FROM runs WHERE agent = 'writer' AND item_index IS NOT NULL ORDER BY item_index",
    )
    assert [row["item_index"] for row in items] == list(range(40))
    for row in items:
        span = agent_spans[f"writer[{row['item_index']}]"]
        assert span.attributes["gen_ai.usage.input_tokens"] == row["input_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == row["output_tokens"]
        assert span.attributes["agentops.agent.status"] == row["status"]
    (skipped,) = rows(tmp_path / "h.db", "SELECT * FROM runs WHERE agent = 'fix_bug'")
    assert skipped["skip_cause"] == routed["agentops.skip.cause"]
    assert json.loads(skipped["decision"])["values"] == {"triage.output.label": "feature"}


def test_a_resumed_run_links_to_the_original_trace(
    tmp_path: Path, server: OpenAITestServer, receiver: OTLPReceiver
) -> None:
    server.inject_for(lambda body: agent_of(body) == "second", kind="status", status=400)
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents("first", "second", second={"depends_on": "first"}),
    )
    db = tmp_path / "h.db"
    # --otel, with the endpoint given the traces-only way.
    env = cli_env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.endpoint}/v1/traces")
    failed = run_agentops("run", flow, "--db", db, "--otel", "--json", env=env)
    assert failed.returncode == 1, failed.stderr
    original, _, _ = check_against_history(list(receiver.spans), db, 1)

    server.clear_faults()
    before = len(receiver.spans)
    resumed = json_of(run_agentops("resume", "1", "--db", db, "--otel", "--json", env=env))
    assert resumed["status"] == "succeeded"
    spans = receiver.spans[before:]
    root, agent_spans, _ = check_against_history(spans, db, resumed["workflow_run_id"])
    assert root.trace_id != original.trace_id
    assert root.links == [(original.trace_id, original.span_id)]
    assert root.attributes["agentops.workflow_run.resumed_from"] == 1
    assert set(agent_spans) == {"second"}  # "first" was reused

    shown = json_of(
        run_agentops("show-workflow-run", str(resumed["workflow_run_id"]), "--db", db, "--json")
    )
    assert shown["trace_id"] == root.trace_id


@pytest.mark.parametrize("collector", ["refused", "silent"])
def test_an_unreachable_collector_costs_one_warning_and_a_bounded_delay(
    tmp_path: Path, server: OpenAITestServer, collector: str
) -> None:
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("a", "b"))
    db = tmp_path / "h.db"
    with SilentListener() as silent:
        endpoint = silent.endpoint if collector == "silent" else f"http://127.0.0.1:{free_port()}"
        began = time.monotonic()
        completed = run_agentops(
            "run", flow, "--db", db, env=traced_env(endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="1")
        )
        took = time.monotonic() - began
    assert completed.returncode == 0, completed.stderr
    assert workflow_runs(db)[0]["status"] == "succeeded"
    warnings = [
        line for line in completed.stderr.splitlines() if "traces could not be sent" in line
    ]
    assert len(warnings) == 1, completed.stderr
    assert endpoint in warnings[0] and "span(s) dropped" in warnings[0]
    assert "Traceback" not in completed.stderr and "opentelemetry" not in completed.stderr
    # The export timeout (1 s) plus the closing margin, with room for a slow machine: never the SDK's 30 s.
    assert took < 20, took


def test_sigterm_flushes_the_spans_of_the_interrupted_run(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    with OpenAITestServer(
        latency=lambda body: 60.0 if agent_of(body) == "slow" else 0.01
    ) as server:
        flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("quick", "slow"))
        db = tmp_path / "h.db"
        # Batches leave every 60 s here: only the flush at the end can send anything in time.
        process = start_agentops(
            "run",
            flow,
            "--db",
            db,
            env=traced_env(receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="60000"),
        )
        try:
            wait_until(lambda: bool(workflow_runs(db)) and "quick" in agent_runs(db, 1), timeout=30)
            wait_until(lambda: any(agent_of(r.body) == "slow" for r in server.requests), timeout=30)
            assert not receiver.spans
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, stderr.decode(errors="replace")
    root, agent_spans, chats = check_against_history(receiver.spans, db, 1)
    assert (
        root.attributes["agentops.workflow_run.status"] == "interrupted" and root.status == "ERROR"
    )
    assert agent_spans["quick"].status == "UNSET"
    (cut,) = chats["slow"]
    assert cut.attributes["error.type"] == "cancelled" and "SIGTERM" in cut.status_message


# --- gRPC --------------------------------------------------------------------------------


def test_the_grpc_protocol_is_honoured(tmp_path: Path, server: OpenAITestServer) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received: list[SpanView] = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:
            received.extend(views_of_request(request))
            return trace_service_pb2.ExportTraceServiceResponse()

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("a"))
        env = traced_env(
            f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_EXPORTER_OTLP_INSECURE="true",
        )
        result = json_of(run_agentops("run", flow, "--db", tmp_path / "h.db", "--json", env=env))
    finally:
        grpc_server.stop(grace=None)
    check_against_history(received, tmp_path / "h.db", result["workflow_run_id"])


# --- without the extra, and off --------------------------------------------------------------

# Runs ``agentops ARGS`` as if OpenTelemetry were not installed (or, with no block, as it is),
# then reports the exit code and whether any OpenTelemetry module was imported.
PROBE = """
import json, sys
block = sys.argv[2] == "block"

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if block and name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["agentops", *json.loads(sys.argv[1])]
from agentops.cli.app import main
try:
    main()
except SystemExit as exit_:
    code = exit_.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def probe(
    args: list[str | Path], *, block: bool, env: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            json.dumps([str(a) for a in args]),
            "block" if block else "-",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    lines = completed.stderr.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def test_otel_without_the_extra_is_one_clear_error(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("a"))
    db = tmp_path / "h.db"
    report, stderr = probe(["run", flow, "--db", db, "--otel"], block=True, env=cli_env())
    assert report["code"] == 2
    assert stderr == [
        "error: --otel needs the [otel] extra (OpenTelemetry), which is not installed: pip install 'agentops[otel]'"
    ]
    assert not server.requests and workflow_runs(db) == []  # nothing ran, nothing was recorded


def test_an_endpoint_variable_without_the_extra_only_warns(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("a"))
    report, stderr = probe(
        ["run", flow, "--db", tmp_path / "h.db"], block=True, env=traced_env("http://127.0.0.1:9")
    )
    assert report["code"] == 0
    assert [line for line in stderr if "OpenTelemetry" in line] == [
        "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OpenTelemetry SDK is not installed, so this run is not traced: "
        "pip install 'agentops[otel]'"
    ]


def test_tracing_off_never_imports_opentelemetry(tmp_path: Path, server: OpenAITestServer) -> None:
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents("a"))
    env = {k: v for k, v in cli_env().items() if not k.startswith("OTEL_")}
    report, _ = probe(["run", flow, "--db", tmp_path / "h.db"], block=False, env=env)
    assert report["code"] == 0 and len(server.requests) == 1
    assert report["loaded"] == []
    refused = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }
    on, _ = probe(
        ["run", flow, "--db", tmp_path / "h.db", "--otel"], block=False, env={**env, **refused}
    )
    assert (
        on["code"] == 0 and "opentelemetry.sdk.trace" in on["loaded"]
    )  # the probe can see it when on
