"""``${VAR}`` in MCP ``env`` and ``headers`` values: expanded from the environment at run time.

The definition recorded in the history keeps ``${VAR}`` as written; the values
are secrets. ``Secrets`` remembers them, so that anything a server or a tool
writes (stderr, an error message, a result) has them replaced by ``***``
before it reaches the history, a log or the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MIN_SECRET = 4  # shorter values would blank out ordinary text


class MissingVariableError(Exception):
    def __init__(self, variable: str) -> None:
        super().__init__(variable)
        self.variable = variable


def expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with every ``${VAR}`` replaced; also the values used. A variable that is not
    set (or empty) raises MissingVariableError."""
    used: list[str] = []

    def replace(match: re.Match[str]) -> str:
        value = env.get(match.group(1), "")
        if not value:
            raise MissingVariableError(match.group(1))
        used.append(value)
        return value

    return VARIABLE.sub(replace, text), used


@dataclass
class Secrets:
    """Values that must never be shown or stored."""

    values: set[str] = field(default_factory=set)

    def add(self, values: Iterable[str]) -> None:
        self.values.update(v for v in values if len(v) >= _MIN_SECRET)

    def scrub(self, text: str) -> str:
        # Longest first: a secret that contains another is replaced whole.
        for value in sorted(self.values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, "***")
        return text


__all__ = ["VARIABLE", "MissingVariableError", "Secrets", "expand"]
