"""The secrets one run holds, and masking them in any text before it is shown or stored.

A run's ``Secrets`` holds the API key of every provider its agents call and the
values of the ``${VAR}`` references in its MCP servers' ``env`` and ``headers``.
Whatever a tool, a server or a failure says passes through ``scrub`` before it
reaches the terminal, the history, a span, a log or the next prompt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MIN_SECRET = 4  # shorter values would blank out ordinary text


@dataclass
class Secrets:
    """Values that must never be shown or stored."""

    values: set[str] = field(default_factory=set)

    def add(self, values: Iterable[str]) -> None:
        self.values.update(v for v in values if len(v) >= MIN_SECRET)

    def scrub(self, text: str) -> str:
        # Longest first: a secret that contains another is replaced whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, "***")
        return text


__all__ = ["MIN_SECRET", "Secrets"]
