"""What every terminal reporter shares: it is an event subscriber and a context
manager, and it prints the end-of-run summary once, on ``WorkflowFinished``."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console

from agentops.runtime.events import Event, WorkflowFinished, WorkflowStarted
from agentops.ui.summary import print_summary
from agentops.workflow.spec import Workflow


class Reporter:
    """Shows a run's events on ``console``. Subclasses implement ``show``.

    Use as ``with reporter: run(..., subscribers=[reporter])``. Calls are quick:
    the engine invokes subscribers synchronously on its event loop.
    """

    styled = True

    def __init__(self, console: Console) -> None:
        self.console = console
        self.workflow: Workflow | None = None
        self.summary_printed = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, WorkflowStarted):
            self.workflow = event.workflow
        self.show(event)
        if isinstance(event, WorkflowFinished):
            self.finish()
            if not self.summary_printed:
                self.summary_printed = True
                print_summary(self.console, event.result, self.workflow, styled=self.styled)

    def show(self, event: Event) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Begin showing (the live view starts its display here)."""

    def finish(self) -> None:
        """Stop showing; safe to call more than once."""

    def __enter__(self) -> Reporter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish()
