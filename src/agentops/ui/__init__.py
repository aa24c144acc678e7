"""The terminal UI: shows a run's engine events as a Rich live view (on a
terminal) or as plain lines (pipes, CI), and prints an end-of-run summary.

    reporter = make_reporter(console)
    with reporter:
        result = run(workflow, subscribers=[reporter])

The reporter prints the summary by itself when it receives ``WorkflowFinished``
(after stopping the live display): a table of every agent (status, attempts,
tokens, cost, duration) with totals, why agents failed or were skipped, the
full outputs of the agents nothing depends on, and a final run line. Callers
print nothing more for it.

Model output, error messages and names are untrusted: they pass through
``sanitize`` (escape sequences, control characters and bidi overrides removed)
and are rendered as ``rich.text.Text``, never as markup.
"""

from __future__ import annotations

from rich.console import Console

from agentops.ui.reporter import Reporter
from agentops.ui.sanitize import sanitize

__all__ = ["Reporter", "make_reporter", "sanitize"]


def make_reporter(console: Console | None = None, *, live: bool | None = None) -> Reporter:
    """A reporter for ``console``: the live view when ``live`` (default: the
    console is an interactive, non-dumb terminal), plain lines otherwise."""
    console = console or Console()
    if live is None:
        live = console.is_terminal and not console.is_dumb_terminal
    if live:
        from agentops.ui.live import LiveReporter

        return LiveReporter(console)
    from agentops.ui.plain import PlainReporter

    return PlainReporter(console)
