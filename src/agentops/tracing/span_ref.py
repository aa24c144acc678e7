"""``SpanRef``: a span known by its ids alone, as the history records it and links point to it.

A leaf record with no OpenTelemetry behind it: a run is recorded with its workflow
span's ids before tracing starts it, and a resumed run or a batch row links to a
span another process ended.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpanRef:
    """A span by its ids, as W3C Trace Context writes them: 32 and 16 lowercase hex digits."""

    trace_id: str
    span_id: str


__all__ = ["SpanRef"]
