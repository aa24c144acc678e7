"""The ``agentops`` command line: parse arguments, call the library, print.

Each command is a thin layer over the package. Any ``AgentOpsError`` becomes
one clear line on stderr and an exit code (2 usage / invalid workflow, 1 a run
with failures, 130 interrupted); a traceback is never shown. Heavy modules
(openai, pricing data, llama_cpp) are imported inside the commands that need
them so ``--help`` and the history commands start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .errors import AgentOpsError
from .store.queries import CostGrouping

if TYPE_CHECKING:
    from .events import WorkflowResult
    from .store import Store

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
_MAX_ID = 2**63 - 1  # SQLite's largest integer: ids beyond it are usage errors, not crashes


def _print_version(requested: bool) -> None:
    if requested:
        from importlib.metadata import version

        typer.echo(f"agentops {version('agentops')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Run multi-agent LLM workflows defined in YAML, and inspect their history."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# --- running: each command a thin layer over agentops.api ----------------------------

InputOption = Annotated[
    Optional[list[str]],
    typer.Option("--input", "-i", help="A workflow input, KEY=VALUE (repeatable)."),
]
CostCapOption = Annotated[
    Optional[float],
    typer.Option("--cost-cap", min=0, help="Override policies.cost_cap (USD) for this run."),
]


RunStarter = Callable[..., Awaitable["WorkflowResult"]]


def _execute(start: RunStarter, *, db: Optional[Path], json_output: bool) -> None:
    """Run ``start`` (arun/aresume partial) with the live view and signals; exit with its code."""
    import json

    from rich.console import Console

    from .launch import result_json, run_with_signals
    from .store import default_db_path
    from .ui import make_reporter

    console = Console(stderr=json_output)
    reporter = make_reporter(console)
    db_path = db or default_db_path()
    with reporter:
        result = run_with_signals(
            lambda control: start(db=db_path, subscribers=[reporter], control=control)
        )
    if json_output:
        typer.echo(json.dumps(result_json(result), indent=2))
    elif result.workflow_run_id is not None:
        console.print(
            f"Recorded as workflow run {result.workflow_run_id} in {db_path} "
            f"(agentops show-workflow-run {result.workflow_run_id})",
            markup=False, highlight=False,
        )
    raise typer.Exit(result.exit_code)


@app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.")],
    input_: InputOption = None,
    db: DbOption = None,
    cost_cap: CostCapOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a workflow. Exit code: 0 all agents succeeded, 1 some failed or were skipped,
    2 invalid workflow or usage, 130 interrupted."""
    from functools import partial

    from .api import arun
    from .inputs import parse_input_args

    inputs = parse_input_args(input_ or [])
    _execute(partial(arun, file, inputs=inputs, cost_cap=cost_cap), db=db, json_output=json_output)


@app.command("resume")
def resume_command(
    workflow_run_id: Annotated[int, typer.Argument(min=1, max=_MAX_ID, help="The workflow run to continue.")],
    input_: InputOption = None,
    db: DbOption = None,
    cost_cap: CostCapOption = None,
    json_output: JsonOption = False,
) -> None:
    """Continue a failed, interrupted or cost-capped run: succeeded agents are reused, not called."""
    from functools import partial

    from .api import aresume
    from .inputs import parse_input_args

    inputs = parse_input_args(input_ or [])
    _execute(partial(aresume, workflow_run_id, inputs=inputs, cost_cap=cost_cap), db=db, json_output=json_output)


@app.command("plan")
def plan_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.")],
    input_: InputOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the execution order, the critical path and worst-case costs, calling no model."""
    import json

    from .inputs import parse_input_args, resolve_inputs
    from .loader import load_workflow
    from .plan import make_plan, render_plan

    workflow = load_workflow(file).workflow
    plan = make_plan(workflow, resolve_inputs(workflow, parse_input_args(input_ or [])))
    if json_output:
        typer.echo(json.dumps(plan.to_json(), indent=2))
    else:
        for line in render_plan(plan):
            typer.echo(line)


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


@app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Workflow YAML files to check.", metavar="FILE")],
) -> None:
    """Check workflow files without running anything (Python tools are imported; MCP servers are
    not started). Prints "OK FILE", or one FILE:LINE:COL: message per problem. Exit code: 0 all
    valid, 2 otherwise."""
    from .errors import WorkflowError
    from .loader import load_workflow

    failed = False
    for file in files:
        try:
            loaded = load_workflow(file)
            if loaded.workflow.tools:  # Python tools must import; ${VAR} is read by run, not here
                from .tools.catalog import load_catalog

                load_catalog(loaded, {}, expand_variables=False)
        except WorkflowError as error:
            failed = True
            for diagnostic in error.diagnostics:
                typer.echo(str(diagnostic))
        except AgentOpsError as error:
            failed = True
            typer.echo(str(error))
        else:
            typer.echo(f"OK {file}")
    raise typer.Exit(2 if failed else 0)


@app.command("graph")
def graph_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.", metavar="FILE")],
    format_: Annotated[
        GraphFormat,
        typer.Option("--format", "-f", help="mermaid (renders in Markdown) or dot (Graphviz)."),
    ] = GraphFormat.mermaid,
) -> None:
    """Print the dependency graph. Edges point from a dependency to the agent that
    uses it; alternatives (any: / ||) are dashed and labelled "or"."""
    from .errors import WorkflowError
    from .graph import WorkflowGraph, to_dot, to_mermaid
    from .loader import load_workflow

    try:
        workflow = load_workflow(file).workflow
    except WorkflowError as error:
        for diagnostic in error.diagnostics:
            typer.echo(str(diagnostic), err=True)
        raise typer.Exit(error.exit_code) from None
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    graph = WorkflowGraph(workflow)
    typer.echo(to_mermaid(graph) if format_ is GraphFormat.mermaid else to_dot(graph), nl=False)


# --- history: reading the runs recorded in the database ---------------------------------

LimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=1_000_000, help="How many to show, newest first.")
]
WorkflowFilter = Annotated[Optional[str], typer.Option("--workflow", "-w", help="Only runs of this workflow.")]


def _show_history(db: Optional[Path], show: Callable[[Store], None]) -> None:
    """Open the history (a missing file reads as empty and is not created), show, map errors."""
    from .store import open_store

    try:
        with open_store(db, create=False) as store:
            show(store)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None


@app.command("list-runs")
def list_runs_command(limit: LimitOption = 20, db: DbOption = None, json_output: JsonOption = False) -> None:
    """List recent agent runs, newest first: status, model, tokens, cost and the start of the output."""
    from .history import show_agent_runs

    _show_history(db, lambda store: show_agent_runs(store, limit=limit, json_output=json_output))


@app.command("show-runs")
def show_runs_command(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="The workflow's name.")],
    limit: LimitOption = 20,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the recent agent runs of one workflow, each with its full output."""
    from .history import show_agent_runs

    _show_history(db, lambda store: show_agent_runs(store, workflow=workflow, limit=limit, json_output=json_output))


@app.command("list-workflow-runs")
def list_workflow_runs_command(
    workflow: WorkflowFilter = None, limit: LimitOption = 20, db: DbOption = None, json_output: JsonOption = False
) -> None:
    """List recent workflow runs, newest first: status (interrupted if its process died),
    agents succeeded, tokens, cost."""
    from .history import show_workflow_runs

    _show_history(db, lambda store: show_workflow_runs(store, workflow=workflow, limit=limit, json_output=json_output))


@app.command("show-workflow-run")
def show_workflow_run_command(
    workflow_run_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, metavar="ID", help="A workflow run id (see list-workflow-runs).")
    ],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one workflow run: every agent with status, attempts, tokens, cost and output."""
    from .history import show_workflow_run

    _show_history(db, lambda store: show_workflow_run(store, workflow_run_id, json_output=json_output))


@app.command("show-run")
def show_run_command(
    run_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, metavar="RUN_ID", help="An agent run id (see list-runs).")
    ],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one agent run: the prompt as sent, every attempt, and the output."""
    from .history import show_agent_run

    _show_history(db, lambda store: show_agent_run(store, run_id, json_output=json_output))


@app.command("costs")
def costs_command(
    by: Annotated[CostGrouping, typer.Option("--by", help="Group spend by workflow, model or day.")] = (
        CostGrouping.workflow
    ),
    since: Annotated[Optional[str], typer.Option("--since", help="From this UTC day on (YYYY-MM-DD).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Up to and including this UTC day.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show spend and tokens of recorded agent runs, grouped by workflow, model or day."""
    from .history import show_costs

    _show_history(db, lambda store: show_costs(store, by=by, since=since, until=until, json_output=json_output))


def main() -> None:
    """Console entry point: run the app, mapping our errors to one line and an exit code."""
    try:
        # Without standalone mode, a command's ``typer.Exit(code)`` comes back as the return value.
        code = app(standalone_mode=False)
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
    except Exception as error:  # the last line of defence against tracebacks
        # Typer vendors its own click: its usage errors derive from typer.TyperException.
        show = getattr(error, "show", None)
        if isinstance(error, typer.TyperException) and callable(show):
            show()
            sys.exit(getattr(error, "exit_code", 2))
        typer.echo(f"error: internal error: {type(error).__name__}: {error} "
                   "(please report this with the command you ran)", err=True)
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)
