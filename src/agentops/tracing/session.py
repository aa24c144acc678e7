"""The OpenTelemetry SDK, set up once per process: a tracer provider, a batching span
processor and an OTLP exporter (http/protobuf or grpc), and shutting them down.

A session is not the global tracer provider: AgentOps never replaces an
application's own OpenTelemetry setup. Spans leave in batches from the SDK's worker
thread while the run goes on. Exporting must never fail or stall a run:

- the first failed export (collector unreachable, refused, timed out) marks the
  collector dead for the session, so later batches are dropped at once instead of
  each waiting out the exporter's timeout;
- ``close`` waits at most the exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``,
  10 s by default) plus a little, then gives up on what is still in flight;
- the SDK's own log lines are captured, not printed: ``close`` logs one warning
  line naming the collector, the reason and how many spans were dropped.

A run makes spans faster than a collector takes them when a fan-out has thousands of
items (two spans or more each): the queue of spans waiting to leave holds
``QUEUE_SIZE`` unless ``OTEL_BSP_MAX_QUEUE_SIZE`` says otherwise (the SDK's 2,048 would
drop most of a 10,000-item fan-out's), and spans dropped because it was full (those
that ended but neither left nor failed to) are counted and named in one warning line,
never lost silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Tracer

from agentops.errors import ConfigurationError
from agentops.tracing.environment import (
    ENDPOINT_VARIABLES,
    QUEUE_SIZE_VARIABLE,
    capture_content,
    export_queue_size,
    setting,
)
from agentops.tracing.span_ref import SpanRef
from agentops.tracing.spans import RunTracer
from agentops.tracing.targets import ChatTarget

logger = logging.getLogger("agentops.tracing")

DEFAULT_TIMEOUT = 10.0  # seconds per export: the OTLP exporters' own default
CLOSE_MARGIN = 2.0  # seconds beyond the export timeout that closing may take
HTTP_DEFAULT_ENDPOINT = "http://localhost:4318"
GRPC_DEFAULT_ENDPOINT = "http://localhost:4317"
PROTOCOLS = ("http/protobuf", "grpc")
QUEUE_SIZE = 32_768  # spans waiting to be exported (OTEL_BSP_MAX_QUEUE_SIZE overrides it)
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"

_T = TypeVar("_T")


class TracingSession:
    """Exports the spans of every run traced in this process; ``close`` once at the end.

    ``exporter`` is any SDK ``SpanExporter`` (tests pass the SDK's in-memory one);
    ``endpoint`` names where it sends, for the warning when it cannot; ``queue_size``
    is how many spans may wait to be sent (more are dropped, and counted).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        endpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        content: bool = False,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.endpoint = endpoint
        self.queue_size = queue_size
        self.timeout = timeout
        self.content = content
        self._exporter = _WatchedExporter(exporter)
        self._ids = _PresetRootIds()
        self._lock = threading.Lock()
        self._provider = TracerProvider(
            resource=_resource(), id_generator=self._ids, shutdown_on_exit=False
        )
        # The other OTEL_BSP_* variables apply as the SDK reads them.
        self._processor = _CountingProcessor(
            self._exporter,
            max_queue_size=queue_size,
            # A batch cannot be larger than the queue (the SDK refuses it): cut to fit.
            max_export_batch_size=queue_size if queue_size < _SDK_BATCH_SIZE else None,
        )
        self._provider.add_span_processor(self._processor)
        self.tracer: Tracer = self._provider.get_tracer(
            "agentops", _agentops_version(), schema_url=SCHEMA_URL
        )
        self._sdk_log = _SdkLog.install()
        self._sdk_log.last = None
        self._closed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TracingSession:
        """The OTLP exporter the OTEL_* variables describe (the exporter reads most of them itself)."""
        exporter_name = setting(environ, "OTEL_TRACES_EXPORTER") or "otlp"
        if exporter_name != "otlp":
            raise ConfigurationError(
                f"OTEL_TRACES_EXPORTER={exporter_name} is not supported: AgentOps exports traces over OTLP; "
                "set it to otlp (or none to turn tracing off)"
            )
        variable, protocol = _first(
            environ, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        )
        protocol = protocol or "http/protobuf"
        if protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"{variable}={protocol} is not supported: use http/protobuf or grpc"
            )
        timeout_variable, timeout_text = _first(
            environ, ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        )
        try:
            timeout = float(timeout_text) if timeout_text else DEFAULT_TIMEOUT
        except ValueError:
            raise ConfigurationError(
                f"{timeout_variable}={timeout_text!r} is not a number of seconds (e.g. 10)"
            ) from None
        try:
            if protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcExporter,
                )

                exporter: SpanExporter = GrpcExporter()
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter as HttpExporter,
                )

                exporter = HttpExporter()
        except ImportError:  # the extra is missing a part: open_tracing names the extra
            raise
        except Exception as error:  # a malformed endpoint, header or certificate variable
            raise ConfigurationError(
                f"the OTLP {protocol} exporter could not be set up from the OTEL_EXPORTER_OTLP_* variables: {error}"
            ) from None
        return cls(
            exporter,
            endpoint=_endpoint_shown(environ, protocol),
            timeout=timeout,
            content=capture_content(environ),
            queue_size=export_queue_size(environ) or QUEUE_SIZE,
        )

    # --- runs -------------------------------------------------------------------------

    def run_tracer(
        self, targets: Mapping[str, ChatTarget], *, links: Sequence[SpanRef] = ()
    ) -> RunTracer:
        """A subscriber for one run. Its workflow span's ids are chosen now (``tracer.ids``),
        so they can be recorded with the run before the span starts."""
        generator = RandomIdGenerator()
        ids = SpanRef(
            f"{generator.generate_trace_id():032x}", f"{generator.generate_span_id():016x}"
        )
        return RunTracer(
            self.tracer,
            self.start_root_span,
            targets,
            ids=ids,
            links=links,
            content=self.content,
        )

    def start_root_span(self, ids: SpanRef, start: Callable[[], _T]) -> _T:
        """Call ``start`` (which starts one span with no parent) so that span gets ``ids``."""
        with self._lock:
            self._ids.preset = ids
            try:
                return start()
            finally:
                self._ids.preset = None

    # --- the end --------------------------------------------------------------------

    def close(self) -> None:
        """Export what is left, waiting at most the export timeout (plus a margin), and log
        one warning line if anything could not be exported. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        # The SDK's shutdown waits up to 30 s for its worker; ours waits the export timeout,
        # then stops the exporter's retries and leaves the (daemon) worker behind.
        closing = threading.Thread(
            target=self._provider.shutdown, name="agentops-tracing-close", daemon=True
        )
        closing.start()
        closing.join(self.timeout + CLOSE_MARGIN)
        stuck = closing.is_alive()
        if stuck:
            self._exporter.abort()
        watched = self._exporter
        if watched.in_flight:
            reason = f"no answer within {self.timeout:g}s"
        elif watched.failed:
            reason = self._sdk_log.last or "the export failed"
        elif not stuck and self._processor.ended > watched.exported + watched.dropped:
            logger.warning(
                "warning: %d span(s) were dropped: they were made faster than %s took them "
                "and the export queue was full; raise %s (now %d)",
                self._processor.ended - watched.exported - watched.dropped,
                self.endpoint,
                QUEUE_SIZE_VARIABLE,
                self.queue_size,
            )
            return
        else:
            return
        logger.warning(
            "warning: traces could not be sent to %s (%s); %d span(s) dropped. Check "
            "OTEL_EXPORTER_OTLP_ENDPOINT, or unset it to stop tracing",
            self.endpoint,
            reason,
            watched.dropped + watched.in_flight,
        )


# --- pieces -----------------------------------------------------------------------------


class _PresetRootIds(RandomIdGenerator):
    """Random ids, except for the one root span started while ``preset`` is set.

    The SDK asks for a trace id only for a span without a parent, then for that
    span's id: both come from ``preset`` then.
    """

    def __init__(self) -> None:
        self.preset: SpanRef | None = None

    def generate_trace_id(self) -> int:
        if self.preset is not None:
            return int(self.preset.trace_id, 16)
        return super().generate_trace_id()

    def generate_span_id(self) -> int:
        if self.preset is not None:
            preset, self.preset = self.preset, None
            return int(preset.span_id, 16)
        return super().generate_span_id()


class _CountingProcessor(BatchSpanProcessor):
    """The SDK's batching processor, counting the spans handed to it: those that neither
    left (``_WatchedExporter.exported``) nor failed to were dropped from its full queue."""

    ended = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        super().on_end(span)


class _WatchedExporter(SpanExporter):
    """Counts what was exported and what could not be; after one failure, drops batches at once."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed = False
        self.exported = 0
        self.dropped = 0
        self.in_flight = 0  # spans of an export call that has not returned
        self._shut = False
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.failed:
            self.dropped += len(spans)
            return SpanExportResult.FAILURE
        self.in_flight = len(spans)
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter bug must cost the spans, not the run
            logger.debug("the span exporter raised", exc_info=True)
            result = SpanExportResult.FAILURE
        finally:
            self.in_flight = 0
        if result is not SpanExportResult.SUCCESS:
            self.failed = True
            self.dropped += len(spans)
        else:
            self.exported += len(spans)
        return result

    def shutdown(self) -> None:
        self.abort()

    def abort(self) -> None:
        """Shut the exporter down: an export retrying against a dead collector gives up."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _SdkLog(logging.Handler):
    """Keeps the SDK's last error line (the reason an export failed) instead of printing it.

    One per process, left in place: the SDK's worker may still log after a session
    closed, and with no handler at all Python would print those lines on stderr.
    """

    _installed: _SdkLog | None = None

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last: str | None = None

    @classmethod
    def install(cls) -> _SdkLog:
        if cls._installed is None:
            cls._installed = cls()
            logging.getLogger("opentelemetry").addHandler(cls._installed)
        return cls._installed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.last = record.getMessage().splitlines()[0][:300]
        except Exception:  # a malformed record must not break logging
            self.last = record.msg if isinstance(record.msg, str) else None


_SDK_BATCH_SIZE = 512  # the SDK's default spans per export


def _resource() -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), named agentops when unnamed."""
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(
            Resource({SERVICE_NAME: "agentops", SERVICE_VERSION: _agentops_version()})
        )
    return resource


def _agentops_version() -> str:
    try:
        return version("agentops")
    except PackageNotFoundError:  # running from a source tree
        return "0"


def _endpoint_shown(environ: Mapping[str, str], protocol: str) -> str:
    traces, base = (environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)
    if protocol == "grpc":
        return traces or base or GRPC_DEFAULT_ENDPOINT
    return traces or f"{(base or HTTP_DEFAULT_ENDPOINT).rstrip('/')}/v1/traces"


def _first(environ: Mapping[str, str], names: Sequence[str]) -> tuple[str, str]:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value.lower() if "PROTOCOL" in name else value
    return names[0], ""


__all__ = ["TracingSession"]
