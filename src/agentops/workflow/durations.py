"""Durations as users write them: ``30s``, ``15m``, ``12h``, ``7d``, ``2w`` (``cache_ttl``,
``agentops cache clear --older-than``)."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")

DURATION_FORM = "a number and a unit: 30s, 15m, 12h, 7d or 2w"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError (naming the form) when it is not a duration."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration: write {DURATION_FORM}")
    return float(match.group(1)) * _UNITS[match.group(2)]


__all__ = ["DURATION_FORM", "parse_duration"]
