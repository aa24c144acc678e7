"""Shared pieces of the tracing tests: a real OTLP/HTTP receiver on 127.0.0.1 that decodes
what the exporter sends with opentelemetry-proto, and one plain view of a span for both
that receiver and the SDK's in-memory exporter, so the same checks apply to either."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode


@dataclass
class SpanView:
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str  # "INTERNAL", "CLIENT", ...
    start: int  # unix nanoseconds
    end: int
    attributes: dict[str, Any]
    status: str  # "UNSET", "OK", "ERROR"
    status_message: str
    links: list[tuple[str, str]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, int, dict[str, Any]]] = field(
        default_factory=list
    )  # name, time, attributes

    @property
    def operation(self) -> str:
        return str(self.attributes.get("gen_ai.operation.name", ""))


def view_of(span: ReadableSpan) -> SpanView:
    """A span as the SDK's in-memory exporter holds it."""
    context = span.get_span_context()
    assert context is not None
    return SpanView(
        name=span.name,
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        parent_id=f"{span.parent.span_id:016x}" if span.parent is not None else None,
        kind=span.kind.name,
        start=span.start_time or 0,
        end=span.end_time or 0,
        attributes={
            k: (list(v) if isinstance(v, tuple) else v) for k, v in (span.attributes or {}).items()
        },
        status=span.status.status_code.name,
        status_message=span.status.description or "",
        links=[
            (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links
        ],
        resource=dict(span.resource.attributes),
        events=[
            (
                event.name,
                event.timestamp,
                {
                    k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in (event.attributes or {}).items()
                },
            )
            for event in span.events
        ],
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def views_of_request(request: ExportTraceServiceRequest) -> Iterator[SpanView]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanView(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() or None,
                    kind=_KINDS[span.kind],
                    start=span.start_time_unix_nano,
                    end=span.end_time_unix_nano,
                    attributes=_attributes(span.attributes),
                    status=_STATUS[span.status.code],
                    status_message=span.status.message,
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    resource=resource,
                    events=[
                        (event.name, event.time_unix_nano, _attributes(event.attributes))
                        for event in span.events
                    ],
                )


class OTLPReceiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` with a protobuf body.

    Keeps every raw body (to search for leaks) and every decoded span. ``endpoint``
    is what ``OTEL_EXPORTER_OTLP_ENDPOINT`` should be set to.
    """

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.spans: list[SpanView] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver._lock:
                    receiver.paths.append(self.path)
                    receiver.content_types.append(self.headers.get("content-type") or "")
                    receiver.bodies.append(body)
                    receiver.spans.extend(views_of_request(request))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def raw(self) -> bytes:
        with self._lock:
            return b"".join(self.bodies)

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class SilentListener:
    """A TCP port that accepts connections and never answers: a collector that hangs."""

    def __init__(self) -> None:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> SilentListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()


# --- checks shared by the in-memory and the end-to-end tests ------------------------------


def by_operation(spans: Iterable[SpanView], operation: str) -> list[SpanView]:
    return [s for s in spans if s.operation == operation]


def check_tree(
    spans: list[SpanView],
) -> tuple[SpanView, dict[str, SpanView], dict[str, list[SpanView]]]:
    """One trace: one root workflow span, agent spans under it, a fan-out's item spans under
    its agent's, chat spans under their agent or item. Returns (root, agent span by name,
    chat spans by agent name), items named as the engine names them (``writer[2]``)."""
    roots = by_operation(spans, "invoke_workflow")
    assert len(roots) == 1, [s.name for s in spans]
    root = roots[0]
    assert root.parent_id is None and root.kind == "INTERNAL"
    assert {s.trace_id for s in spans} == {root.trace_id}
    invocations = by_operation(spans, "invoke_agent")
    top = [s for s in invocations if s.parent_id == root.span_id]
    agents = {str(s.attributes["gen_ai.agent.name"]): s for s in top}
    assert len(agents) == len(top), "one span per agent"
    by_id = {a.span_id: name for name, a in agents.items()}
    for span in invocations:
        name = str(span.attributes["gen_ai.agent.name"])
        assert span.kind == "INTERNAL" and span.name == f"invoke_agent {name}"
        if span.parent_id == root.span_id:
            parent = root
        else:  # an item of a fan-out: under its agent's span, named by its index
            parent = agents[name]
            assert parent.span_id == span.parent_id, span
            assert "agentops.fan_out.item_count" in parent.attributes
            key = f"{name}[{span.attributes['agentops.item.index']}]"
            assert key not in agents, f"one span per item: {key}"
            agents[key] = span
            by_id[span.span_id] = key
        assert parent.start <= span.start <= span.end <= parent.end
    chats: dict[str, list[SpanView]] = {}
    for chat in by_operation(spans, "chat"):
        assert chat.kind == "CLIENT" and chat.parent_id in by_id, chat
        owner = by_id[chat.parent_id]
        assert agents[owner].start <= chat.start <= chat.end <= agents[owner].end
        assert chat.name == f"chat {chat.attributes['gen_ai.request.model']}"
        chats.setdefault(owner, []).append(chat)
    for calls in chats.values():
        calls.sort(key=lambda s: int(s.attributes["agentops.attempt.number"]))
    assert len(spans) == 1 + len(agents) + sum(map(len, chats.values())) + len(
        by_operation(spans, "execute_tool")
    )
    return root, agents, chats


__all__ = [
    "OTLPReceiver",
    "SilentListener",
    "SpanView",
    "StatusCode",
    "by_operation",
    "check_tree",
    "view_of",
    "views_of_request",
]
