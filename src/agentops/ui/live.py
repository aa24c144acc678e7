"""The live terminal view: a Rich ``Live`` display of one row per agent.

Above the table: the workflow, progress (done/total), per-status counts,
elapsed time and spend against the cost cap. Each row: agent, status
(waiting / running / retrying (n) / succeeded / failed / skipped / cancelled /
succeeded (reused)), elapsed time, tokens, cost, and a one-line preview of the
streaming output (its last characters, newlines flattened) or, for an agent
that did not succeed, the reason.

An agent routed away by its ``when`` reads "routed away" (not "skipped"), with the
decision as its preview. A fan-out agent is one row, whatever its item count:
its status reads "3/5 ✓ 1 running 1 failed" (items by status), its tokens and
cost are its items' summed, and its preview is the first item that failed. Up to
``INSTANCE_ROWS`` of its items under way are shown beneath it ("└ writer[3]"),
each with its own time, tokens and streaming preview; instance rows never take
more than half the table.

With more agents than the terminal has lines, the table summarises instead of
scrolling: running and retrying agents first, then failed ones, then the most
recently finished, then waiting ones, with "… and N more (x succeeded, y
waiting)" for the rest.

Event handlers only update ``RunState``; ``Live`` re-renders by itself about
8 times a second on its own thread, so a lock guards the state. On
``WorkflowFinished`` the display stops (it is transient, so it disappears) and
the summary (``summary.render_summary``) is printed in its place.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agentops.runtime.events import AgentStatus, CostWarning, Event, SkipCause
from agentops.ui.format import (
    ROUTED,
    STATUS_STYLES,
    format_cost,
    format_duration,
    format_spend,
    format_tokens,
)
from agentops.ui.reporter import Reporter
from agentops.ui.sanitize import one_line, tail_preview
from agentops.ui.state import RETRYING, AgentRow, RunState

PREVIEW_WIDTH = 60
AGENT_WIDTH = 24  # longer names are cut; the summary shows them whole
# Lines the view spends outside agent rows: two header lines, the table's
# heading and rule, the "… and N more" line, and one spare for the cursor.
CHROME_LINES = 6
MIN_ROWS = 3
INSTANCE_ROWS = 3  # items under way shown beneath a fan-out's row
INSTANCE_INDENT = "└ "
STATUS_ORDER = (
    AgentStatus.RUNNING,
    RETRYING,
    AgentStatus.WAITING_APPROVAL,
    AgentStatus.FAILED,
    AgentStatus.SUCCEEDED,
    ROUTED,
    AgentStatus.SKIPPED,
    AgentStatus.CANCELLED,
    AgentStatus.WAITING,
)


class LiveView:
    """A renderable over ``RunState``: rebuilt from the current state at each refresh."""

    def __init__(
        self, state: RunState, lock: threading.Lock, clock: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.lock = lock
        self.clock = clock

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or console.size.height
        with self.lock:
            yield self.render(options.max_width, height)

    def render(self, width: int, height: int) -> RenderableType:
        """The view for a terminal of ``width`` x ``height`` cells (call with the lock held)."""
        state = self.state
        if not state.rows:
            return Text("starting…", style="dim")
        now = self.clock()
        budget = max(MIN_ROWS, height - CHROME_LINES)
        rows = list(state.rows.values())
        # Items under way beneath their fan-out: at most half the lines, the rest for agents.
        wanted = sum(min(INSTANCE_ROWS, len(r.fan_out.active)) for r in rows if r.fan_out)
        shown, hidden = select_rows(rows, budget - min(wanted, budget // 2))
        parts: list[RenderableType] = [
            self._header(now),
            self._counts(),
            self._table(with_instances(shown, budget - len(shown)), now, width),
        ]
        if hidden:
            parts.append(Text(f"… and {len(hidden)} more ({describe_counts(hidden)})", style="dim"))
        return Group(*parts)

    def _header(self, now: float) -> Text:
        state = self.state
        elapsed = format_duration(now - state.started_at) if state.started_at is not None else "-"
        header = Text()
        header.append(one_line(state.workflow), style="bold")
        header.append(f"  {state.done}/{len(state.rows)} done  {elapsed}  ")
        header.append(
            format_spend(
                state.spent, state.cost_unknown, state.cost_cap, earlier=state.spent_before
            ),
            style="bold",
        )
        return header

    def _counts(self) -> Text:
        counts = self.state.counts()
        text = Text()
        for status in STATUS_ORDER:
            if counts[status]:
                if text:
                    text.append("  ")
                text.append(f"{counts[status]} {status}", style=STATUS_STYLES.get(status, ""))
        return text

    def _table(self, rows: list[tuple[AgentRow, bool]], now: float, width: int) -> Table:
        headers = ("agent", "status", "time", "tokens", "cost")
        cells = [
            (
                Text(
                    (INSTANCE_INDENT if instance else "") + one_line(row.name)[:AGENT_WIDTH],
                    style="dim" if instance else "",
                ),
                Text(row.label, style=STATUS_STYLES.get(row.shown_status, "")),
                Text(format_duration(row.elapsed(now)) if row.started_at is not None else ""),
                Text(_tokens(row)),
                Text(format_cost(row.cost) if row.status != AgentStatus.WAITING else ""),
            )
            for row, instance in rows
        ]
        fixed = [len(header) for header in headers]
        for row_cells in cells:
            fixed = [max(w, cell.cell_len) for w, cell in zip(fixed, row_cells, strict=True)]
        # The preview gets what the other columns leave (3 cells between columns), so they never squeeze.
        preview_width = max(8, min(PREVIEW_WIDTH, width - sum(fixed) - 3 * len(fixed)))
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for header, column_width in zip(headers, fixed, strict=True):
            numeric = header not in ("agent", "status")
            table.add_column(
                header, no_wrap=True, width=column_width, justify="right" if numeric else "left"
            )
        table.add_column("output", no_wrap=True, overflow="ellipsis", width=preview_width)
        for (row, _), row_cells in zip(rows, cells, strict=True):
            table.add_row(*row_cells, _preview(row, preview_width))
        return table


def with_instances(rows: list[AgentRow], room: int) -> list[tuple[AgentRow, bool]]:
    """``rows``, each fan-out followed by up to ``INSTANCE_ROWS`` of its items under way
    (lowest index first), ``room`` instance rows in all; (row, is an instance)."""
    lines: list[tuple[AgentRow, bool]] = []
    for row in rows:
        lines.append((row, False))
        if row.fan_out is not None and room > 0:
            running = sorted(row.fan_out.active.values(), key=lambda item: item.index)
            for item in running[: min(INSTANCE_ROWS, room)]:
                lines.append((item, True))
                room -= 1
    return lines


def _tokens(row: AgentRow) -> str:
    if row.active and row.streamed_chars:
        # Providers report usage only at the end; ~4 characters a token meanwhile.
        return f"~{row.usage.output_tokens + row.streamed_chars // 4} out"
    return format_tokens(row.usage) if row.usage.total_tokens else ""


def _preview(row: AgentRow, width: int) -> Text:
    if row.skip_cause is SkipCause.ROUTED and row.error:
        return Text(tail_preview(row.error, width), style=STATUS_STYLES[ROUTED])
    if row.fan_out is not None and row.fan_out.first_failure:
        return Text(tail_preview(row.fan_out.first_failure, width), style="red")
    if row.active and row.calls_in_progress:
        calls = list(row.calls_in_progress.values())
        more = f" (+{len(calls) - 1} more)" if len(calls) > 1 else ""
        return Text(one_line(f"{calls[-1]} …{more}")[:width], style="cyan")
    if row.status in (AgentStatus.FAILED, AgentStatus.SKIPPED, AgentStatus.CANCELLED) and row.error:
        return Text(tail_preview(row.error, width), style="red")
    if row.status == RETRYING and not row.streamed and row.error:
        return Text(tail_preview(row.error, width), style="yellow")
    # Model text: sanitized, and a Text so that "[bold]" in it stays literal.
    return Text(tail_preview(row.streamed, width), style="dim" if row.settled else "")


def select_rows(rows: list[AgentRow], limit: int) -> tuple[list[AgentRow], list[AgentRow]]:
    """Choose at most ``limit`` rows worth seeing; return (shown in file order, hidden)."""
    if len(rows) <= limit:
        return rows, []

    def priority(row: AgentRow) -> tuple[int, int]:
        if row.active:
            return (0, row.index)
        if row.status == AgentStatus.FAILED:
            return (1, -row.finished_order)
        if row.settled:
            return (2, -row.finished_order)  # most recently finished first
        return (3, row.index)

    ranked = sorted(rows, key=priority)
    shown = sorted(ranked[:limit], key=lambda row: row.index)
    return shown, ranked[limit:]


def describe_counts(rows: list[AgentRow]) -> str:
    """ "3 succeeded, 280 waiting", in status order."""
    counts = Counter(r.shown_status for r in rows)
    return ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER if counts[status])


class LiveReporter(Reporter):
    """Drives a transient ``Live`` display of ``LiveView`` while the run goes."""

    def __init__(self, console: Console, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(console)
        self.state = RunState()
        self.lock = threading.Lock()
        self.view = LiveView(self.state, self.lock, clock)
        self.live: Live | None = None

    def show(self, event: Event) -> None:
        with self.lock:
            self.state.apply(event)
        if isinstance(event, CostWarning):
            # Printed above the live display, where it stays after the display goes.
            self.console.print(
                Text(f"warning: {one_line(event.message)}", style="yellow"), highlight=False
            )

    def start(self) -> None:
        if self.live is None and not self.state.finished:
            self.live = Live(
                self.view,
                console=self.console,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()

    def finish(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
