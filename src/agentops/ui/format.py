"""How numbers and statuses read on screen, shared by the live view, the plain
lines and the summary so all three say the same thing the same way."""

from __future__ import annotations

from agentops.runtime.events import AgentResult, AgentStatus
from agentops.runtime.usage import Usage


def format_cost(cost: float | None) -> str:
    """Dollars with four decimals; "?" when the price is unknown."""
    return "?" if cost is None else f"${cost:.4f}"


def format_cap(cap: float | None) -> str:
    """A cost cap as the user wrote it: "$1.00", "$0.005"; "no cap" when there is none."""
    if cap is None:
        return "no cap"
    return f"${cap:.2f}" if round(cap, 2) == cap else f"${cap:g}"


def format_spend(spent: float, unknown: bool, cap: float | None, *, earlier: float = 0.0) -> str:
    """Spend against the cap: "$0.0123 of $1.00 cap", "$0.0123 (no cap)"; ``earlier``
    (spent by the runs a resume continues, which the cap also covers) is shown apart."""
    amount = format_cost(spent) + (" + unknown" if unknown else "")
    if earlier:
        amount += f" (+ {format_cost(earlier)} by earlier runs)"
    return f"{amount} (no cap)" if cap is None else f"{amount} of {format_cap(cap)} cap"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_tokens(usage: Usage) -> str:
    """Input+output tokens, "~" first when the provider reported none and they were estimated."""
    return f"{'~' if usage.estimated else ''}{usage.input_tokens}+{usage.output_tokens}"


def status_label(result: AgentResult) -> str:
    if result.reused:
        return "succeeded (reused)"
    return str(result.status)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


STATUS_STYLES: dict[str, str] = {
    AgentStatus.WAITING: "dim",
    AgentStatus.RUNNING: "cyan",
    "retrying": "yellow",
    AgentStatus.SUCCEEDED: "green",
    AgentStatus.FAILED: "bold red",
    AgentStatus.SKIPPED: "magenta",
    AgentStatus.CANCELLED: "yellow",
}
