"""A batch's progress on the terminal: a Rich progress bar on a TTY, plain lines otherwise,
then the batch summary. A ``BatchObserver`` of ``agentops.batch``.

The bar shows rows done, failed and skipped, calls in flight, dollars spent of the cap,
the rate and the ETA. Plain lines come at most every ``PLAIN_EVERY`` seconds (and for
the last row), so a 100,000-row batch does not print 100,000 lines.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from agentops.ui.format import format_cap, format_cost, format_spend
from agentops.ui.sanitize import sanitize

if TYPE_CHECKING:
    from agentops.batch.runner import BatchSummary, RowStatus
    from agentops.runtime.events import WorkflowResult
    from agentops.runtime.limits import CallLimits

PLAIN_EVERY = 2.0  # seconds between plain progress lines


class BatchProgress:
    """Shows one batch; use as a context manager around the run."""

    def __init__(self, console: Console, *, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        self.rows = 0
        self.done_before = 0
        self.limits: CallLimits | None = None
        self.cap: float | None = None
        self.started = time.monotonic()
        self._last_line = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    # --- BatchObserver -------------------------------------------------------------

    def batch_started(self, batch_id: int, rows: int, done: int, limits: CallLimits) -> None:
        self.rows, self.done_before, self.limits = rows, done, limits
        self.cap = limits.budget.cap
        self.started = time.monotonic()
        cap = (
            "no cost cap"
            if self.cap is None
            else f"cost cap {format_cap(self.cap)} for the whole batch"
        )
        resumed = f", {done} done before" if done else ""
        self.console.print(
            f"batch {batch_id} started: {rows} rows{resumed}, {cap}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if self.live:
            self._progress = Progress(
                TextColumn("rows"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task("rows", total=rows, completed=done, detail="")
            self._progress.start()

    def row_finished(self, row: int, status: RowStatus, result: WorkflowResult) -> None:
        if status in self.counts:
            self.counts[status] += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, detail=self.detail())
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY or self.finished_rows >= self.rows:
            self._last_line = now
            self.console.print(
                f"rows {self.finished_rows}/{self.rows}: {self.detail()}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

    def batch_finished(self, summary: BatchSummary) -> None:
        self.stop()
        for line in summary_lines(summary):
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    # --- display ------------------------------------------------------------------------

    @property
    def finished_rows(self) -> int:
        return self.done_before + sum(self.counts.values())

    def detail(self) -> str:
        limits = self.limits
        spent = 0.0 if limits is None else limits.budget.spent
        of_cap = "" if self.cap is None else f" of {format_cap(self.cap)}"
        elapsed = max(1e-9, time.monotonic() - self.started)
        rate = sum(self.counts.values()) / elapsed
        in_flight = 0 if limits is None else limits.in_flight
        return (
            f"{self.counts['succeeded']} ok, {self.counts['failed']} failed, {self.counts['skipped']} skipped · "
            f"{in_flight} calls in flight · {format_cost(spent)}{of_cap} · {rate:.1f} rows/s"
        )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def summary_lines(summary: BatchSummary) -> list[str]:
    """The end of a batch: what ran, what it cost, the pauses, and what to do next."""
    ran = summary.succeeded + summary.failed + summary.skipped + summary.waiting
    waiting = f", {summary.waiting} waiting for approval" if summary.waiting else ""
    lines = [
        f"batch {summary.batch_id} ({sanitize(summary.workflow)}) {summary.status.value} in "
        f"{summary.finished_at - summary.started_at:.1f}s: {ran}/{summary.rows} rows ran — "
        f"{summary.succeeded} succeeded ({summary.reused} reused), {summary.failed} failed, "
        f"{summary.skipped} skipped by {summary.skipped_by}{waiting}, {summary.not_run} not run; "
        f"{format_spend(summary.cost, False, summary.cost_cap, earlier=summary.spent_before)}",
    ]
    if summary.pauses:
        lines.append(
            f"rate limits: {summary.pauses} pause(s), {summary.paused_seconds:.1f}s in all (429 with Retry-After)"
        )
    if summary.out is not None:
        lines.append(f"results: {summary.out} (one JSON line per row, in input order)")
    if summary.waiting:
        lines.append("decide them: agentops approvals lists what waits, with the commands")
    if summary.status.value != "succeeded":
        lines.append(
            f"resume with: agentops resume-batch {summary.batch_id}"
            + (f" --out {summary.out}" if summary.out else "")
        )
    return lines


__all__ = ["BatchProgress", "summary_lines"]
