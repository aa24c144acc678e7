"""How numbers and statuses read on screen, shared by the live view, the plain
lines and the summary so all three say the same thing the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agentops.runtime.events import AgentResult, AgentStatus, SkipCause
from agentops.runtime.usage import Usage

ROUTED = "routed away"  # a skipped agent whose ``when`` was false: shown apart, not a problem
ROUTED_MARK = "↷"
NOT_RUN = "not run"  # fan-out items never started: the cost cap or a stop came first


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


def shown_status(status: str, skip_cause: SkipCause | None) -> str:
    """A status as the views name it: a skip that routing chose reads "routed away"."""
    if status == AgentStatus.SKIPPED and skip_cause is SkipCause.ROUTED:
        return ROUTED
    return str(status)


def status_label(result: AgentResult) -> str:
    """ "succeeded", "succeeded (reused)", "routed away"; a fan-out adds its items:
    "failed (3/5 ✓ 2 failed)"."""
    if result.reused:
        return "succeeded (reused)"
    label = shown_status(result.status, result.skip_cause)
    if result.status is AgentStatus.WAITING_APPROVAL:
        label = "waiting for approval"
    if result.iterations is not None:
        label += f" ({plural(len(result.iterations), 'iteration')})"
    items = items_label(result)
    return f"{label} ({items})" if items is not None else label


def items_label(result: AgentResult) -> str | None:
    """A fan-out's items by status, "3/5 ✓ 2 failed"; None for any other agent."""
    if result.instances is None:
        return None
    counts = item_counts(shown_status(i.status, i.skip_cause) for i in result.instances)
    total = max(result.item_count or 0, len(result.instances))
    if total > len(result.instances):
        counts[NOT_RUN] = total - len(result.instances)
    return describe_items(counts, total)


def item_counts(statuses: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


ITEM_ORDER = ("running", "retrying", "failed", "skipped", ROUTED, "cancelled", NOT_RUN, "waiting")


def describe_items(counts: Mapping[str, int], total: int) -> str:
    """A fan-out's items by status: "3/5 ✓ 1 running 1 failed" (succeeded of all first,
    then each other status that has any, "waiting" last)."""
    parts = [f"{counts.get(AgentStatus.SUCCEEDED, 0)}/{total} ✓"]
    parts.extend(f"{counts[status]} {status}" for status in ITEM_ORDER if counts.get(status))
    return " ".join(parts)


def attempt_count(result: AgentResult) -> int:
    """The calls an agent made: a fan-out's are its instances', a loop member's its
    iterations' (those run this time)."""
    if result.iterations is not None:
        return sum(attempt_count(i) for i in result.iterations if not i.reused)
    if result.instances is not None:
        return sum(len(i.attempts) for i in result.instances if not i.reused)
    return len(result.attempts)


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
    ROUTED: "blue",
    AgentStatus.WAITING_APPROVAL: "bold yellow",
}
