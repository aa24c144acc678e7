"""Token counts (``Usage``): the leaf record that messages, events, providers and pricing share.

It imports nothing from AgentOps, so every layer can import it without a circle:
a provider's answer (``messages.ChatResponse``) carries one, and so do the result
records the engine emits (``events``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Usage:
    """Token counts; addable. ``estimated`` when the provider reported none."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.estimated or other.estimated,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


__all__ = ["Usage"]
