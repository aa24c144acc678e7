"""OpenTelemetry traces of runs: whether tracing is on, and opening it.

Tracing is an events subscriber (``spans.RunTracer``), fed by the engine like the
history and the terminal view. It is on with ``--otel`` (``otel=True``), or when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set;
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` turn it off. Off, it
costs nothing: this module, ``environment`` (the variables read here),
``span_ref`` and ``targets`` import no OpenTelemetry, and ``session`` / ``spans``
(which do) are imported only once tracing is on.

The SDK reads the standard ``OTEL_*`` variables from the process environment
itself (service name, resource attributes, headers, timeout, sampler, batching);
this package reads only those that decide whether and how to export.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agentops.errors import ConfigurationError
from agentops.tracing.environment import (
    CAPTURE_CONTENT_VARIABLE,
    ENDPOINT_VARIABLES,
    capture_content,
    setting,
    tracing_requested,
)
from agentops.tracing.span_ref import SpanRef

if TYPE_CHECKING:
    from agentops.tracing.session import TracingSession

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'agentops[otel]'"


def open_tracing(
    flag: bool | None, environ: Mapping[str, str] | None = None
) -> TracingSession | None:
    """A tracing session when tracing is on (None when off).

    ``--otel`` without the ``[otel]`` extra is a ConfigurationError naming it. An
    endpoint variable set for other programs, without the extra, only warns: the
    run goes on untraced.
    """
    env = os.environ if environ is None else environ
    if not tracing_requested(flag, env):
        return None
    try:
        from agentops.tracing.session import TracingSession

        return TracingSession.from_environment(env)
    except ImportError as error:
        if not (error.name or "").startswith(("opentelemetry", "google", "grpc")):
            raise
        if flag:
            raise ConfigurationError(
                f"--otel needs the [otel] extra (OpenTelemetry), which is not installed: {INSTALL_HINT}"
            ) from None
        variable = next(name for name in ENDPOINT_VARIABLES if setting(env, name))
        logger.warning(
            "%s is set, but the OpenTelemetry SDK is not installed, so this run is not traced: %s",
            variable,
            INSTALL_HINT,
        )
        return None


__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "ENDPOINT_VARIABLES",
    "INSTALL_HINT",
    "SpanRef",
    "capture_content",
    "open_tracing",
    "tracing_requested",
]
