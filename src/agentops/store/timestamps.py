"""How times are stored: ISO-8601 UTC text with microseconds ("2024-05-01T12:00:03.123456+00:00"),
so that text order is time order and SQLite's date functions read them."""

from __future__ import annotations

from datetime import UTC, datetime


def to_iso(timestamp: float | None) -> str | None:
    """Unix seconds as stored text; None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def from_iso(text: str | None) -> float | None:
    """Stored text back to unix seconds (None for missing or unreadable text)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # first-release CURRENT_TIMESTAMP values are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
