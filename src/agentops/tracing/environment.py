"""The OTEL_* variables AgentOps reads itself: whether a run is traced, and whether spans
carry prompts and outputs. Imports no OpenTelemetry, so asking costs nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
CAPTURE_CONTENT_VARIABLE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
QUEUE_SIZE_VARIABLE = "OTEL_BSP_MAX_QUEUE_SIZE"
# "true" is the documented switch; the others are what newer GenAI instrumentations accept for spans.
_CAPTURE_VALUES = frozenset({"true", "span_only", "span_and_event"})


def tracing_requested(flag: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a run is traced: ``flag`` (``--otel``) or an OTLP endpoint in the environment,
    unless the environment turns the SDK or its trace exporter off."""
    env = os.environ if environ is None else environ
    if (
        setting(env, "OTEL_SDK_DISABLED") == "true"
        or setting(env, "OTEL_TRACES_EXPORTER") == "none"
    ):
        return False
    return bool(flag) or any(setting(env, name) for name in ENDPOINT_VARIABLES)


def capture_content(environ: Mapping[str, str] | None = None) -> bool:
    """Prompts and outputs go into spans only when the user opted in."""
    env = os.environ if environ is None else environ
    return setting(env, CAPTURE_CONTENT_VARIABLE) in _CAPTURE_VALUES


def export_queue_size(environ: Mapping[str, str] | None = None) -> int | None:
    """The spans that may wait to be exported, when the environment sets it (a positive
    whole number; anything else is left to the SDK's default handling: None)."""
    env = os.environ if environ is None else environ
    text = setting(env, QUEUE_SIZE_VARIABLE)
    return int(text) if text.isdigit() and int(text) > 0 else None


def setting(environ: Mapping[str, str], name: str) -> str:
    """The variable ``name`` as compared: stripped and lower-cased ("" when unset)."""
    return environ.get(name, "").strip().lower()


__all__ = [
    "CAPTURE_CONTENT_VARIABLE",
    "ENDPOINT_VARIABLES",
    "QUEUE_SIZE_VARIABLE",
    "capture_content",
    "export_queue_size",
    "setting",
    "tracing_requested",
]
