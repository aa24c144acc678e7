"""The ``agentops`` command line: parse arguments, call the library, print.

Each command is a thin layer over the package. Any ``AgentOpsError`` becomes
one clear line on stderr and an exit code (2 usage / invalid workflow, 1 a run
with failures, 130 interrupted); a traceback is never shown. Heavy modules
(openai, pricing data, llama_cpp) are imported inside the commands that need
them so ``--help`` and the history commands start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import AgentOpsError

app = typer.Typer(
    name="agentops",
    help="Run multi-agent LLM workflows defined in YAML, and inspect their history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", envvar="AGENTOPS_DB", help="History database file [default: ./agentops.db]."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# ---------------------------------------------------------------------------------
# Commands are added below by their owners; keep each a thin layer.
# ---------------------------------------------------------------------------------


def main() -> None:
    """Console entry point: run the app, mapping our errors to one line and an exit code."""
    try:
        app(standalone_mode=False)
    except AgentOpsError as error:
        for line in str(error).splitlines() or [type(error).__name__]:
            typer.echo(f"error: {line}", err=True)
        sys.exit(error.exit_code)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the last line of defence against tracebacks
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        typer.echo(f"error: internal error: {type(error).__name__}: {error} "
                   "(please report this with the command you ran)", err=True)
        sys.exit(70)
