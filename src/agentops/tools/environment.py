"""``${VAR}`` in MCP ``env`` and ``headers`` values: expanded from the environment at run time.

The definition recorded in the history keeps ``${VAR}`` as written; the values
are secrets: they join the run's ``Secrets`` (``agentops.secrets``), so that
anything a server or a tool writes (stderr, an error message, a result) has
them replaced by ``***`` before it reaches the history, a log or the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agentops.runtime.secrets import Secrets

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


__all__ = ["VARIABLE", "MissingVariableError", "Secrets", "expand"]
