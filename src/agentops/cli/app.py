"""The ``agentops`` command line: parse arguments, call the library, print.

Each command is a thin layer over the package. Any ``AgentOpsError`` becomes
one clear line on stderr and an exit code (2 usage / invalid workflow, 1 a run
with failures, 3 a run waiting for an approval, 130 interrupted); a traceback is never shown. Heavy modules
(openai, pricing data, llama_cpp) are imported inside the commands that need
them so ``--help`` and the history commands start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, Union

import typer

from agentops.errors import AgentOpsError
from agentops.store.records import CostGrouping

if TYPE_CHECKING:
    from agentops.batch.runner import BatchSummary
    from agentops.runtime.events import WorkflowResult
    from agentops.store.location import DbLocation
    from agentops.store.reader import HistoryReader
    from agentops.workflow.spec import CacheMode

app = typer.Typer(
    name="agentops",
    help="Run multi-agent LLM workflows defined in YAML, and inspect their history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DbOption = Annotated[
    Optional[str],
    typer.Option(
        "--db",
        envvar="AGENTOPS_DB",
        metavar="DB",
        help="History: a SQLite file (or sqlite:///path) or postgresql://user@host:5432/dbname "
        "[default: ./agentops.db].",
    ),
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
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run multi-agent LLM workflows defined in YAML, and inspect their history."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _located(db: Union[str, DbLocation, None]) -> DbLocation:
    """``--db`` as a SQLite file or a PostgreSQL URL; a malformed one is a usage error."""
    from agentops.store.location import locate

    try:
        return locate(db)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None


# --- running: each command a thin layer over agentops.api ----------------------------

InputOption = Annotated[
    Optional[list[str]],
    typer.Option("--input", "-i", help="A workflow input, KEY=VALUE (repeatable)."),
]


def _cost_cap(value: Optional[float]) -> Optional[float]:
    """Every --cost-cap is a finite amount of at least 0, checked before anything is loaded."""
    from agentops.runtime.budget import check_cap

    return check_cap(value, "--cost-cap")


CostCapOption = Annotated[
    Optional[float],
    typer.Option(
        "--cost-cap", callback=_cost_cap, help="Override policies.cost_cap (USD) for this run."
    ),
]
BudgetOption = Annotated[
    Optional[str],
    typer.Option(
        "--budget",
        metavar="NAME",
        help="Also draw on this named budget (agentops budget set); overrides policies.budget.",
    ),
]
OtelOption = Annotated[
    bool,
    typer.Option(
        "--otel",
        help="Send OpenTelemetry traces over OTLP (needs the [otel] extra). Also on when "
        "OTEL_EXPORTER_OTLP_ENDPOINT is set.",
    ),
]


class CacheChoice(StrEnum):
    off = "off"
    read = "read"
    read_write = "read_write"


CacheOption = Annotated[
    Optional[CacheChoice],
    typer.Option(
        "--cache",
        help="The response cache, over policies.cache: off, read (hits only) or read_write.",
    ),
]


class ExecutorChoice(StrEnum):
    local = "local"
    ray = "ray"


ExecutorOption = Annotated[
    Optional[ExecutorChoice],
    typer.Option(
        "--executor",
        help="Where each agent's run is carried out: local (this process) or ray (tasks on a Ray "
        "cluster; needs the [ray] extra). Default: policies.executor, else local.",
    ),
]
RayAddressOption = Annotated[
    Optional[str],
    typer.Option(
        "--ray-address",
        metavar="ADDRESS",
        help="With --executor ray: the cluster, as Ray takes it (auto, HOST:PORT, "
        "ray://HOST:10001). Default: RAY_ADDRESS, else a local Ray on 127.0.0.1 started for "
        "this command and stopped after it.",
    ),
]


def _cache_mode(choice: Optional[CacheChoice]) -> CacheMode | None:
    return None if choice is None else choice.value


def _executor(choice: Optional[ExecutorChoice]) -> Optional[str]:
    return None if choice is None else choice.value


RunStarter = Callable[..., Awaitable["WorkflowResult"]]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="When the run waits for an approval, stay: continue as soon as a decision is "
        "recorded (from another terminal or the web view).",
    ),
]


def _execute(
    start: RunStarter,
    *,
    db: Union[str, DbLocation, None],
    json_output: bool,
    wait: bool = False,
    executor: Optional[str] = None,
    ray_address: Optional[str] = None,
) -> None:
    """Run ``start`` (arun/aresume partial) with the live view and signals; exit with its code.
    ``wait``: a run that ends waiting for an approval is resumed (on the same ``executor``)
    once one is decided."""
    import json
    from functools import partial

    from rich.console import Console

    from agentops.api import aresume
    from agentops.cli.approvals import history_reader, wait_for_decision, waiting_lines
    from agentops.cli.launch import result_json, run_with_signals
    from agentops.runtime.events import RunStatus
    from agentops.ui import make_reporter

    console = Console(stderr=json_output)
    db_path = _located(db)

    def once(start: RunStarter) -> WorkflowResult:
        reporter = make_reporter(console)
        with reporter:
            return run_with_signals(
                lambda control: start(db=db_path, subscribers=[reporter], control=control)
            )

    def say(text: str) -> None:
        # Not wrapped: the commands in these lines are copied and pasted whole.
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    while True:
        result = once(start)
        if result.status is not RunStatus.WAITING:
            break
        for line in waiting_lines(result):
            say(line)
        if not wait or result.workflow_run_id is None:
            break
        try:
            wait_for_decision(history_reader(db_path), result.workflow_run_id, say)
        except KeyboardInterrupt:
            say(f"Stopped waiting; workflow run {result.workflow_run_id} stays waiting")
            break
        start = partial(aresume, result.workflow_run_id, executor=executor, ray_address=ray_address)
    if json_output:
        typer.echo(json.dumps(result_json(result), indent=2))
    elif result.workflow_run_id is not None:
        console.print(
            f"Recorded as workflow run {result.workflow_run_id} in {db_path} "
            f"(agentops show-workflow-run {result.workflow_run_id})",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(result.exit_code)


@app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.")],
    input_: InputOption = None,
    db: DbOption = None,
    cost_cap: CostCapOption = None,
    budget: BudgetOption = None,
    json_output: JsonOption = False,
    otel: OtelOption = False,
    cache: CacheOption = None,
    replay: Annotated[
        Optional[int],
        typer.Option(
            "--replay",
            min=1,
            max=_MAX_ID,
            metavar="RUN_ID",
            help="Answer every model call from this recorded workflow run (by agent and "
            "request), never from the network; a call it has no answer for fails its agent.",
        ),
    ] = None,
    wait: WaitOption = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    """Run a workflow. Exit code: 0 all agents succeeded, 1 some failed or were skipped,
    2 invalid workflow or usage, 3 waiting for an approval, 130 interrupted."""
    from functools import partial

    from agentops.api import arun
    from agentops.workflow.inputs import parse_input_args

    inputs = parse_input_args(input_ or [])
    start = partial(
        arun,
        file,
        inputs=inputs,
        cost_cap=cost_cap,
        budget=budget,
        otel=otel or None,
        cache=_cache_mode(cache),
        replay=replay,
        executor=_executor(executor),
        ray_address=ray_address,
    )
    _execute(
        start,
        db=db,
        json_output=json_output,
        wait=wait,
        executor=_executor(executor),
        ray_address=ray_address,
    )


@app.command("resume")
def resume_command(
    workflow_run_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, help="The workflow run to continue.")
    ],
    input_: InputOption = None,
    db: DbOption = None,
    cost_cap: CostCapOption = None,
    budget: BudgetOption = None,
    json_output: JsonOption = False,
    otel: OtelOption = False,
    cache: CacheOption = None,
    wait: WaitOption = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    """Continue a failed, interrupted, cost-capped or waiting run: succeeded agents are reused,
    not called; the approvals decided since apply (with --wait, it first waits for one)."""
    from functools import partial

    from agentops.api import aresume
    from agentops.cli.approvals import history_reader, refuse_undecided, wait_for_decision
    from agentops.workflow.inputs import parse_input_args

    inputs = parse_input_args(input_ or [])
    db_path = _located(db)

    def decided_first(reader: HistoryReader) -> None:
        if not wait:
            refuse_undecided(reader, workflow_run_id)

    _show_history(db_path, decided_first)
    if wait:
        try:
            wait_for_decision(
                history_reader(db_path), workflow_run_id, lambda t: typer.echo(t, err=True)
            )
        except KeyboardInterrupt:
            raise typer.Exit(3) from None
        except AgentOpsError as error:
            raise fail(str(error), error.exit_code) from None
    start = partial(
        aresume,
        workflow_run_id,
        inputs=inputs,
        cost_cap=cost_cap,
        budget=budget,
        otel=otel or None,
        cache=_cache_mode(cache),
        executor=_executor(executor),
        ray_address=ray_address,
    )
    _execute(
        start,
        db=db_path,
        json_output=json_output,
        wait=wait,
        executor=_executor(executor),
        ray_address=ray_address,
    )


@app.command("rerun")
def rerun_command(
    workflow_run_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, metavar="RUN_ID", help="The workflow run to rerun.")
    ],
    from_agent: Annotated[
        str,
        typer.Option(
            "--from", metavar="AGENT", help="Run this agent and everything downstream of it again."
        ),
    ],
    file: Annotated[
        Optional[Path],
        typer.Argument(
            metavar="[FILE]",
            help="The workflow as it is now [default: the recorded file, if it is unchanged].",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Reuse the outputs of upstream agents whose definition changed."
        ),
    ] = False,
    input_: InputOption = None,
    db: DbOption = None,
    cost_cap: CostCapOption = None,
    json_output: JsonOption = False,
    otel: OtelOption = False,
    cache: CacheOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    """A new run from one agent: the agents not downstream of it reuse their recorded outputs
    ($0, marked reused); it and everything downstream run with the current YAML."""
    from functools import partial

    from agentops.api import arerun
    from agentops.workflow.inputs import parse_input_args

    inputs = parse_input_args(input_ or [])
    start = partial(
        arerun,
        workflow_run_id,
        from_agent,
        file,
        force=force,
        inputs=inputs,
        cost_cap=cost_cap,
        otel=otel or None,
        cache=_cache_mode(cache),
        executor=_executor(executor),
        ray_address=ray_address,
    )
    _execute(
        start, db=db, json_output=json_output, executor=_executor(executor), ray_address=ray_address
    )


@app.command("plan")
def plan_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.")],
    input_: InputOption = None,
    data: Annotated[
        Optional[Path],
        typer.Option("--data", help="Plan a batch over these rows (.jsonl or .csv) instead."),
    ] = None,
    map_: Annotated[
        Optional[list[str]], typer.Option("--map", help="With --data: INPUT=COLUMN.")
    ] = None,
    cost_cap: Annotated[
        Optional[float],
        typer.Option("--cost-cap", callback=_cost_cap, help="With --data: the batch's cap (USD)."),
    ] = None,
    max_rows: Annotated[
        Optional[int], typer.Option("--max-rows", min=1, help="With --data: the first N rows.")
    ] = None,
    budget: Annotated[
        Optional[str],
        typer.Option(
            "--budget",
            metavar="NAME",
            help="Also show what is left of this named budget and whether the worst case fits.",
        ),
    ] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the execution order, the critical path and worst-case costs, calling no model.
    With --data, also the worst case of the whole batch."""
    import json

    from agentops.cli.plan import make_batch_plan, make_plan, render_batch_plan, render_plan
    from agentops.workflow.inputs import parse_input_args, resolve_inputs
    from agentops.workflow.loader import load_workflow

    workflow = load_workflow(file).workflow
    budget = budget or workflow.policies.budget
    if data is None:
        plan = make_plan(workflow, resolve_inputs(workflow, parse_input_args(input_ or [])))
        left = _budget_left(db, budget, plan.worst_case_total)
        if json_output:
            typer.echo(json.dumps({**plan.to_json(), **left}, indent=2))
        else:
            for line in render_plan(plan):
                typer.echo(line)
            if left:
                typer.echo(_render_budget_left(left))
        return
    from agentops.batch.datasets import InputMapping, check_rows, parse_map_args, read_rows

    mapping = InputMapping(workflow, parse_map_args(map_ or []))
    rows = check_rows(data, mapping, max_rows).rows
    first = next(read_rows(data))
    plan = make_plan(workflow, resolve_inputs(workflow, mapping.inputs_of(first, data)))
    batch_plan = make_batch_plan(
        workflow,
        (
            resolve_inputs(workflow, mapping.inputs_of(row, data))
            for row in read_rows(data)
            if row.number <= rows
        ),
        cost_cap=cost_cap,
    )
    left = _budget_left(db, budget, batch_plan.worst_case_total)
    if json_output:
        typer.echo(
            json.dumps(
                {"first_row": plan.to_json(), "batch": batch_plan.to_json(), **left}, indent=2
            )
        )
        return
    typer.echo(f"Row 1 of {data}:")
    for line in render_plan(plan):
        typer.echo(line)
    typer.echo("")
    for line in render_batch_plan(batch_plan):
        typer.echo(line)
    if left:
        typer.echo(_render_budget_left(left))


def _budget_left(db: Optional[str], name: Optional[str], worst: Optional[float]) -> dict[str, Any]:
    """``{"budget": {...}}``: the named budget now, and whether ``worst`` fits in what is left."""
    if name is None:
        return {}
    from agentops.store.budgets import budget_statuses
    from agentops.store.stores import open_database

    try:
        with open_database(_located(db), create=False) as store:
            (status,) = budget_statuses(store, name)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    fits = None if worst is None else status.fits(worst)
    return {"budget": {**status.to_json(), "worst_case": worst, "fits": fits}}


def _render_budget_left(left: dict[str, Any]) -> str:
    budget = left["budget"]
    head = (
        f"Budget {budget['name']}: ${budget['remaining']:.4f} left of ${budget['cap']:.2f}"
        f" ({budget['period']}; ${budget['spent']:.4f} spent, ${budget['reserved']:.4f} held)"
    )
    if budget["fits"] is None:
        return f"{head}; the worst case is unknown (a model without a price)."
    verdict = "fits" if budget["fits"] else "does NOT fit"
    return f"{head}; the worst case ${budget['worst_case']:.4f} {verdict}."


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


@app.command("validate")
def validate_command(
    files: Annotated[
        list[Path], typer.Argument(help="Workflow YAML files to check.", metavar="FILE")
    ],
) -> None:
    """Check workflow files without running anything (Python tools are imported; MCP servers are
    not started). Prints "OK FILE", or one FILE:LINE:COL: message per problem. Exit code: 0 all
    valid, 2 otherwise."""
    from agentops.errors import WorkflowError
    from agentops.workflow.loader import load_workflow

    failed = False
    for file in files:
        try:
            loaded = load_workflow(file)
            if loaded.workflow.tools:  # Python tools must import; ${VAR} is read by run, not here
                from agentops.tools.catalog import load_catalog

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
            for warning in loaded.warnings():
                typer.echo(str(warning))
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
    from agentops.errors import WorkflowError
    from agentops.workflow.graph import WorkflowGraph, to_dot, to_mermaid
    from agentops.workflow.loader import load_workflow

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


# --- batches: one workflow over every row of a data file ----------------------------------

DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        help="The rows: a .jsonl file (one JSON object per line) or a .csv file with a header.",
    ),
]
OutOption = Annotated[
    Optional[Path],
    typer.Option("--out", help="Write every row's result here as JSONL, in input order."),
]


def _execute_batch(
    start: Callable[..., Awaitable[BatchSummary]], *, db: Optional[str], json_output: bool
) -> None:
    """Run ``start`` (arun_batch/aresume_batch partial) with progress and signals; exit with its code."""
    import json

    from rich.console import Console

    from agentops.cli.launch import run_with_signals
    from agentops.ui.batch import BatchProgress

    console = Console(stderr=json_output)
    db_path = _located(db)
    with BatchProgress(console) as progress:
        summary = run_with_signals(
            lambda control: start(db=db_path, observer=progress, control=control)
        )
    if json_output:
        typer.echo(json.dumps(summary.to_json(), indent=2))
    raise typer.Exit(summary.exit_code)


@app.command("batch")
def batch_command(
    file: Annotated[Path, typer.Argument(help="The workflow YAML file.")],
    data: DataOption,
    out: OutOption = None,
    map_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--map", help="Feed input INPUT from column COLUMN: INPUT=COLUMN (repeatable)."
        ),
    ] = None,
    cost_cap: Annotated[
        Optional[float],
        typer.Option(
            "--cost-cap",
            callback=_cost_cap,
            help="Cap (USD) for the whole batch; wins over policies.cost_cap.",
        ),
    ] = None,
    max_rows: Annotated[
        Optional[int], typer.Option("--max-rows", min=1, help="Only the first N rows.")
    ] = None,
    budget: BudgetOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    otel: OtelOption = False,
    cache: CacheOption = None,
    replay: Annotated[
        Optional[int],
        typer.Option(
            "--replay",
            min=1,
            max=_MAX_ID,
            metavar="BATCH_ID",
            help="Answer every model call from the runs of this recorded batch (by agent and "
            "request), never from the network.",
        ),
    ] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    """Run the workflow once per row of a JSONL or CSV file, under one cost cap for the whole batch.
    Exit code: 0 every row succeeded, 1 some failed or were skipped, 2 bad input, 130 interrupted."""
    from functools import partial

    from agentops.batch.datasets import parse_map_args
    from agentops.batch.runner import arun_batch

    mapping = parse_map_args(map_ or [])
    _execute_batch(
        partial(
            arun_batch,
            file,
            data=data,
            input_map=mapping,
            cost_cap=cost_cap,
            budget=budget,
            max_rows=max_rows,
            out=out,
            otel=otel or None,
            cache=_cache_mode(cache),
            replay=replay,
            executor=_executor(executor),
            ray_address=ray_address,
        ),
        db=db,
        json_output=json_output,
    )


@app.command("resume-batch")
def resume_batch_command(
    batch_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, metavar="ID", help="The batch to continue.")
    ],
    out: OutOption = None,
    cost_cap: Annotated[
        Optional[float],
        typer.Option(
            "--cost-cap",
            callback=_cost_cap,
            help="A new cap (USD) for the whole batch; what it spent counts.",
        ),
    ] = None,
    budget: BudgetOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
    otel: OtelOption = False,
    cache: CacheOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
) -> None:
    """Continue a batch after a crash, Ctrl-C or the cost cap: succeeded rows are reused, the rest run."""
    from functools import partial

    from agentops.batch.runner import aresume_batch

    _execute_batch(
        partial(
            aresume_batch,
            batch_id,
            out=out,
            cost_cap=cost_cap,
            budget=budget,
            otel=otel or None,
            cache=_cache_mode(cache),
            executor=_executor(executor),
            ray_address=ray_address,
        ),
        db=db,
        json_output=json_output,
    )


# --- history: reading the runs recorded in the database ---------------------------------

LimitOption = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=1_000_000, help="How many to show, newest first.")
]
WorkflowFilter = Annotated[
    Optional[str], typer.Option("--workflow", "-w", help="Only runs of this workflow.")
]


def _show_history(db: Union[str, DbLocation, None], show: Callable[[HistoryReader], None]) -> None:
    """Open the history (a missing file reads as empty and is not created, an older one is
    upgraded), show through its reader, map errors."""
    from agentops.store.stores import history_reader

    try:
        reader = history_reader(db)
        try:
            show(reader)
        finally:
            reader.close()
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None


ByOption = Annotated[
    Optional[str], typer.Option("--by", help="Who decides [default: the OS user].")
]
RunIdArgument = Annotated[
    int, typer.Argument(min=1, max=_MAX_ID, help="The workflow run that waits.")
]
AgentArgument = Annotated[str, typer.Argument(help="The agent that waits for approval.")]


@app.command("approvals")
def approvals_command(db: DbOption = None, json_output: JsonOption = False) -> None:
    """List what waits for approval, across runs: the prompt (before) or answer (after) to
    decide on, and the commands to decide it."""
    from agentops.cli.approvals import show_approvals
    from agentops.cli.history import make_console

    _show_history(
        db,
        lambda reader: show_approvals(reader, json_output=json_output, console=make_console()),
    )


def _decide(
    db: Optional[str],
    workflow_run_id: int,
    agent: str,
    verdict: str,
    by: Optional[str],
    text: Optional[str],
) -> None:
    """Record one decision; a stale or second one is refused with what to do instead."""
    from agentops.store.approvals import decider
    from agentops.store.sqlite_writer import SqliteHistoryWriter
    from agentops.store.stores import open_database

    try:
        with open_database(_located(db)) as store:
            record = SqliteHistoryWriter(store).decide_approval(
                workflow_run_id, agent, verdict, by=decider(by), text=text
            )
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    word = {"approved": "Approved", "rejected": "Rejected", "revise": "Sent back"}[verdict]
    typer.echo(
        f"{word}: {agent} in workflow run {workflow_run_id} (by {record.decided_by}). "
        f"Continue it: agentops resume {workflow_run_id}"
    )


@app.command("approve")
def approve_command(
    workflow_run_id: RunIdArgument,
    agent: AgentArgument,
    comment: Annotated[
        Optional[str], typer.Option("--comment", help="A note kept with the decision.")
    ] = None,
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Approve an agent waiting for approval: before, it runs; after, its answer goes on."""
    _decide(db, workflow_run_id, agent, "approved", by, comment)


@app.command("reject")
def reject_command(
    workflow_run_id: RunIdArgument,
    agent: AgentArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why: the agent fails with it.")],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Reject an agent waiting for approval: it fails with the reason; its dependents are skipped."""
    _decide(db, workflow_run_id, agent, "rejected", by, reason)


@app.command("revise")
def revise_command(
    workflow_run_id: RunIdArgument,
    agent: AgentArgument,
    feedback: Annotated[
        str, typer.Option("--feedback", help="What to change: appended to its task.")
    ],
    by: ByOption = None,
    db: DbOption = None,
) -> None:
    """Send an answer back (approval: after): the agent answers again with the feedback, as a
    new attempt under the cap, and waits again."""
    _decide(db, workflow_run_id, agent, "revise", by, feedback)


@app.command("list-runs")
def list_runs_command(
    limit: LimitOption = 20, db: DbOption = None, json_output: JsonOption = False
) -> None:
    """List recent agent runs, newest first: status, model, tokens, cost and the start of the output."""
    from agentops.cli.history import show_agent_runs

    _show_history(db, lambda reader: show_agent_runs(reader, limit=limit, json_output=json_output))


@app.command("show-runs")
def show_runs_command(
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="The workflow's name.")],
    limit: LimitOption = 20,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the recent agent runs of one workflow, each with its full output."""
    from agentops.cli.history import show_agent_runs

    _show_history(
        db,
        lambda reader: show_agent_runs(
            reader, workflow=workflow, limit=limit, json_output=json_output
        ),
    )


@app.command("list-workflow-runs")
def list_workflow_runs_command(
    workflow: WorkflowFilter = None,
    limit: LimitOption = 20,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List recent workflow runs, newest first: status (interrupted if its process died),
    agents succeeded, tokens, cost."""
    from agentops.cli.history import show_workflow_runs

    _show_history(
        db,
        lambda reader: show_workflow_runs(
            reader, workflow=workflow, limit=limit, json_output=json_output
        ),
    )


@app.command("show-workflow-run")
def show_workflow_run_command(
    workflow_run_id: Annotated[
        int,
        typer.Argument(
            min=1, max=_MAX_ID, metavar="ID", help="A workflow run id (see list-workflow-runs)."
        ),
    ],
    every_item: Annotated[
        bool,
        typer.Option("--all", help="Show every item of a fan-out agent, not only the first 20."),
    ] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one workflow run: every agent with status, attempts, tokens, cost and output; a
    fan-out agent with its items' statuses and each item under it; why a skipped agent was
    skipped (routed away by its `when`, a dependency, the cost cap)."""
    from agentops.cli.history import show_workflow_run

    _show_history(
        db,
        lambda reader: show_workflow_run(
            reader, workflow_run_id, json_output=json_output, every_item=every_item
        ),
    )


@app.command("show-run")
def show_run_command(
    run_id: Annotated[
        int,
        typer.Argument(
            min=1, max=_MAX_ID, metavar="RUN_ID", help="An agent run id (see list-runs)."
        ),
    ],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one agent run: the prompt as sent, every attempt, and the output."""
    from agentops.cli.history import show_agent_run

    _show_history(db, lambda reader: show_agent_run(reader, run_id, json_output=json_output))


@app.command("costs")
def costs_command(
    by: Annotated[
        CostGrouping, typer.Option("--by", help="Group spend by workflow, model or day.")
    ] = (CostGrouping.workflow),
    since: Annotated[
        Optional[str], typer.Option("--since", help="From this UTC day on (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        Optional[str], typer.Option("--until", help="Up to and including this UTC day.")
    ] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show spend and tokens of recorded agent runs, grouped by workflow, model or day."""
    from agentops.cli.history import show_costs

    _show_history(
        db,
        lambda reader: show_costs(reader, by=by, since=since, until=until, json_output=json_output),
    )


# --- the web view -----------------------------------------------------------------------------


@app.command("ui")
def ui_command(
    db: DbOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free one).")
    ] = 8765,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a --host other than loopback (prints a warning)."
        ),
    ] = False,
    allowed_host: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Also answer requests addressed to this host name (repeatable): a DNS name or proxy that "
            "reaches this machine. With --allow-remote, IP addresses and the machine's host name always work.",
        ),
    ] = None,
) -> None:
    """Serve a local web view of the history: runs, each run's graph coloured by status,
    every agent's prompt, output and attempts, live while a run is going. Read-only."""
    try:
        from agentops.web.serve import serve
    except ImportError as error:
        raise fail(
            f"the web view needs the ui extra ({error.name} is missing): pip install 'agentops[ui]'"
        ) from None
    from agentops.store.location import locate

    try:
        serve(
            locate(db),
            host=host,
            port=port,
            allow_remote=allow_remote,
            allowed_hosts=allowed_host or (),
        )
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None


@app.command("list-batches")
def list_batches_command(
    limit: LimitOption = 20, db: DbOption = None, json_output: JsonOption = False
) -> None:
    """List recent batches, newest first: status, rows succeeded / failed / skipped, cost and cap."""
    from agentops.cli.history import show_batches

    _show_history(db, lambda reader: show_batches(reader, limit=limit, json_output=json_output))


@app.command("show-batch")
def show_batch_command(
    batch_id: Annotated[
        int, typer.Argument(min=1, max=_MAX_ID, metavar="ID", help="A batch id (see list-batches).")
    ],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one batch: its file, progress by row status, totals, and the rows that did not succeed."""
    from agentops.cli.history import show_batch

    _show_history(db, lambda reader: show_batch(reader, batch_id, json_output=json_output))


# --- looking after the history ------------------------------------------------------------

db_app = typer.Typer(
    help="Look after the history: copy it into PostgreSQL, prune old runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(db_app, name="db")


def _seconds(value: str) -> float:
    """``90d``, ``12h``, ``2w`` as seconds (``workflow.durations``); else a usage error."""
    from agentops.workflow.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as problem:
        raise typer.BadParameter(str(problem)) from None


@db_app.command("migrate")
def db_migrate_command(
    to: Annotated[
        str,
        typer.Option(
            "--to", metavar="URL", help="The PostgreSQL database (empty) to copy the history into."
        ),
    ],
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Copy a SQLite history (--db) into an empty PostgreSQL database, every id and link kept,
    in one transaction; the SQLite file is left as it was."""
    import json

    from agentops.store.maintenance import copy_history
    from agentops.store.stores import open_database

    source, target = _located(db), _located(to)
    if source.is_postgres or not target.is_postgres:
        raise fail(
            f"db migrate copies a SQLite file (--db, now {source}) into PostgreSQL "
            f"(--to postgresql://…, now {target})"
        )
    assert source.path is not None
    if not source.path.exists():
        raise fail(f"no history database at {source}; pass the file with --db")
    try:
        with open_database(source) as reading, open_database(target) as writing:
            copied = copy_history(reading, writing)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    if json_output:
        typer.echo(json.dumps({"from": str(source), "to": str(target), "rows": copied}, indent=2))
        return
    counts = ", ".join(f"{n} {table}" for table, n in copied.items() if n)
    typer.echo(f"Copied {source} into {target}: {counts or 'no rows'}.")
    typer.echo(f"Use it with --db {target} (or AGENTOPS_DB).")


@db_app.command("prune")
def db_prune_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete runs that finished longer ago than this: 90d, 12h, 2w.",
        ),
    ],
    keep_failed: Annotated[
        bool, typer.Option("--keep-failed", help="Keep failed and interrupted runs.")
    ] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete old workflow runs with their agent runs, attempts and tool calls (a batch's with
    the batch), in batches; what they spent stays in `agentops costs`. Never a running run."""
    import json

    from agentops.store.maintenance import prune
    from agentops.store.stores import open_database

    seconds = _seconds(older_than)
    try:
        with open_database(_located(db), create=False) as store:
            report = prune(store, older_than=seconds, keep_failed=keep_failed)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    kept = f"; kept {report.kept_failed} failed or interrupted" if keep_failed else ""
    typer.echo(
        f"Pruned {report.workflow_runs} workflow runs ({report.agent_runs} agent runs, "
        f"${report.cost:.4f} kept in costs) and {report.batches} batches that finished before "
        f"{report.cutoff[:19]}Z{kept}."
    )


# --- named budgets ----------------------------------------------------------------------------

budget_app = typer.Typer(
    help="Named budgets: a cap every run drawing on it shares, across processes and machines.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(budget_app, name="budget")


class BudgetPeriod(StrEnum):
    total = "total"
    day = "day"
    week = "week"
    month = "month"


BudgetName = Annotated[str, typer.Argument(metavar="NAME", help="The budget's name.")]


@budget_app.command("set")
def budget_set_command(
    name: BudgetName,
    cap: Annotated[
        float, typer.Option("--cap", min=0, help="USD that every run under it may spend together.")
    ],
    period: Annotated[
        BudgetPeriod,
        typer.Option("--period", help="When it starts again, at UTC boundaries (total: never)."),
    ] = BudgetPeriod.total,
    db: DbOption = None,
) -> None:
    """Create a named budget, or change its cap or period (what it has spent stays). Runs draw
    on it with policies.budget or --budget NAME."""
    from agentops.store.budgets import set_budget
    from agentops.store.stores import open_database

    location = _located(db)
    try:
        with open_database(location) as store:
            set_budget(store, name, cap, period.value)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    typer.echo(f"Budget {name}: ${cap:.2f} per {period.value} period in {location}.")


def _budgets(db: Optional[str], name: Optional[str]) -> list[Any]:
    from agentops.store.budgets import budget_statuses
    from agentops.store.stores import open_database

    try:
        with open_database(_located(db), create=False) as store:
            return budget_statuses(store, name)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None


def _budget_line(status: Any) -> str:
    period = "total" if not status.period_start else f"{status.period} {status.period_start}"
    line = (
        f"{status.name:<16} ${status.spent:>10.4f} spent  ${status.reserved:>9.4f} held  "
        f"${status.remaining:>10.4f} left of ${status.cap:.2f}  ({period}; {status.runs} runs)"
    )
    if status.charged:
        line += f"; ${status.charged:.4f} of the spend is dead processes' holds at worst case"
    return line


@budget_app.command("list")
def budget_list_command(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Every named budget with its current period's spend, holds and what is left."""
    import json

    statuses = _budgets(db, None)
    if json_output:
        typer.echo(json.dumps([s.to_json() for s in statuses], indent=2))
    elif not statuses:
        typer.echo("No budgets yet: agentops budget set NAME --cap USD.")
    for status in statuses if not json_output else []:
        typer.echo(_budget_line(status))


@budget_app.command("show")
def budget_show_command(
    name: BudgetName, db: DbOption = None, json_output: JsonOption = False
) -> None:
    """One budget: spent, reserved (calls in flight), remaining and runs in its current period,
    and how much of the spend is dead processes' holds counted at their worst case."""
    import json

    (status,) = _budgets(db, name)
    if json_output:
        typer.echo(json.dumps(status.to_json(), indent=2))
        return
    typer.echo(_budget_line(status))


# --- the response cache ------------------------------------------------------------------

cache_app = typer.Typer(
    name="cache",
    help="The response cache in the history: what it holds, and clearing it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cache_app)


@cache_app.command("stats")
def cache_stats_command(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Per workflow: cached answers, their size, and the hits its runs had with the dollars saved."""
    from agentops.cli.history import show_cache_stats

    _show_history(db, lambda reader: show_cache_stats(reader, json_output=json_output))


@cache_app.command("clear")
def cache_clear_command(
    workflow: Annotated[
        Optional[str], typer.Option("--workflow", "-w", help="Only the answers of this workflow.")
    ] = None,
    older_than: Annotated[
        Optional[str],
        typer.Option(
            "--older-than", metavar="DURATION", help="Only answers older than this: 12h, 7d, 2w."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Delete cached answers (all of them, or of one workflow, or older than a duration); the
    recorded runs are kept."""
    import time

    from agentops.assembly import open_history
    from agentops.workflow.durations import parse_duration

    before = None
    if older_than is not None:
        try:
            before = time.time() - parse_duration(older_than)
        except ValueError as problem:
            raise fail(f"--older-than: {problem}") from None
    path = _located(db)
    if path.path is not None and not path.path.exists():
        typer.echo(f"no history at {path}: nothing to clear")
        return
    try:
        with open_history(path) as (_, writer):
            deleted = writer.clear_cache(workflow=workflow, before=before)
    except AgentOpsError as error:
        raise fail(str(error), error.exit_code) from None
    typer.echo(f"cleared {deleted} cached answer{'s' if deleted != 1 else ''} from {path}")


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
        typer.echo(
            f"error: internal error: {type(error).__name__}: {error} "
            "(please report this with the command you ran)",
            err=True,
        )
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)
