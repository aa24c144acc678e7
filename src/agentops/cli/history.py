"""The history commands' output: Rich tables for people, ``--json`` for programs.

Each ``show_*`` function reads through the ``HistoryReader`` it is handed (any
store's) and prints. Everything that came from a model or a workflow file
(outputs, errors, prompts, names) passes through ``sanitize`` and is rendered
as ``rich.text.Text``, never as markup, so an output cannot colour, move or
rewrite the terminal. When stdout is not a terminal, Rich prints plain text.
JSON keeps the same keys in the same order every time; ``ensure_ascii`` keeps
control characters escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from rich import box
from rich.console import Console, JustifyMethod
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from agentops.errors import RunNotFoundError, UsageError
from agentops.runtime.events import Decision
from agentops.runtime.usage import Usage
from agentops.store.reader import HistoryReader
from agentops.store.records import (
    AgentRunRecord,
    AttemptRecord,
    CostGroup,
    CostGrouping,
    RowOutcome,
    ToolCallRow,
    ToolServerRow,
    WorkflowRunRecord,
)
from agentops.ui.format import format_cap, format_cost, format_duration, format_tokens, plural
from agentops.ui.sanitize import one_line, sanitize
from agentops.workflow.suggest import did_you_mean

PREVIEW_WIDTH = 60
ITEMS_SHOWN = 20  # a fan-out's instances shown by show-workflow-run without --all


# --- commands ----------------------------------------------------------------------------------


def show_agent_runs(
    reader: HistoryReader,
    *,
    workflow: str | None = None,
    limit: int = 20,
    json_output: bool = False,
) -> None:
    """``list-runs`` (a table) and ``show-runs --workflow`` (each run with its output)."""
    if workflow is not None:
        _require_workflow(reader, workflow)
    runs = reader.agent_runs(workflow=workflow, limit=limit)
    if json_output:
        print_json([run.to_json() for run in runs])
        return
    console = make_console()
    if not runs:
        console.print(Text(f"No agent runs recorded yet in {reader.location}."))
        return
    if workflow is None:
        console.print(_agent_runs_table(console, runs))
        return
    for run in runs:
        console.print(_agent_run_heading(run))
        if run.status == "skipped":
            console.print(skip_reason(run))
        else:
            _print_block(
                console, run.output if run.status == "succeeded" else run.error or run.output
            )
        console.print()


def show_workflow_runs(
    reader: HistoryReader,
    *,
    workflow: str | None = None,
    limit: int = 20,
    json_output: bool = False,
) -> None:
    """``list-workflow-runs``."""
    if workflow is not None:
        _require_workflow(reader, workflow)
    runs = reader.workflow_runs(workflow=workflow, limit=limit)
    if json_output:
        print_json([run.to_json() for run in runs])
        return
    console = make_console()
    if not runs:
        console.print(Text(f"No workflow runs recorded yet in {reader.location}."))
        return
    console.print(_workflow_runs_table(console, runs))


def show_workflow_run(
    reader: HistoryReader,
    workflow_run_id: int,
    *,
    json_output: bool = False,
    every_item: bool = False,
) -> None:
    """``show-workflow-run ID``: every agent with status, attempts, tokens, cost and output; a
    fan-out agent with its item count and statuses, its instances under it (the first
    ``ITEMS_SHOWN`` unless ``every_item``; ``--json`` has them all)."""
    detail = reader.workflow_run(workflow_run_id)
    if json_output:
        print_json(detail.to_json())
        return
    run = detail.run
    console = make_console()
    console.print(
        _line("Workflow run ", str(run.id), " · ", clean(run.workflow), " · ", run.status)
    )
    facts = [f"started {short_time(run.started_at)} UTC"]
    if run.duration is not None:
        facts.append(f"took {format_duration(run.duration)}")
    if run.resumed_from is not None:
        facts.append(f"resumed from workflow run {run.resumed_from}")
    console.print(_line("  ", " · ".join(facts)))
    spent = f"{format_cost(run.cost)} ({'no cap' if run.cost_cap is None else format_cap(run.cost_cap) + ' cap'})"
    console.print(
        _line(
            "  cost ",
            spent,
            " · tokens ",
            _tokens(run.input_tokens, run.output_tokens, run.tokens_estimated),
        )
    )
    if detail.definition_sha256:
        source = clean(run.source_path) if run.source_path else "definition"
        console.print(_line("  ", source, f" (sha256 {detail.definition_sha256[:12]})"))
    if detail.inputs:
        shown = ", ".join(f"{key}={one_line(str(value))}" for key, value in detail.inputs.items())
        console.print(_line("  inputs: ", _cut(shown, 200)))
    if detail.trace_id:
        console.print(_line("  trace ", clean(detail.trace_id)))
    if not detail.agents:
        console.print(Text("No agent has finished in this run."))
        return
    limit = None if every_item else ITEMS_SHOWN
    console.print(_agents_table(console, detail.agents, limit))
    for agent in detail.agents:
        _print_with_instances(console, agent, limit, run.id)
    for server in detail.tool_servers:
        _print_server(console, server)


def _print_with_instances(
    console: Console, agent: AgentRunRecord, limit: int | None, workflow_run_id: int
) -> None:
    """An agent run's section, then its iterations' (a loop's member) and items' (a fan-out)."""
    _print_agent_run(console, agent)
    for iteration in agent.iteration_runs or ():
        _print_with_instances(console, iteration, limit, workflow_run_id)
    if agent.instances is None:
        return
    for instance in agent.instances[:limit]:
        _print_agent_run(console, instance)
    hidden = len(agent.instances) - len(agent.instances[:limit])
    if hidden:
        console.print(_more_items(hidden, agent, workflow_run_id))


def loop_summary(agent: AgentRunRecord) -> str:
    """ "loop refine: 2 iterations, until held at iteration 2"."""
    ran = plural(agent.iterations or 0, "iteration")
    return f"loop {agent.loop}: {ran}" + (f", {agent.loop_end}" if agent.loop_end else "")


def _print_agent_run(console: Console, agent: AgentRunRecord) -> None:
    """One agent run's section of show-workflow-run: what went wrong, then its output."""
    heading = _line(clean(agent.name), f" (agent run {agent.id})")
    if agent.instances is not None:
        heading.append(f" · {fan_out_summary(agent)}")
    if agent.iteration_runs is not None:
        heading.append(_line(" · ", clean(loop_summary(agent))))
    console.print(Rule(heading, align="left", style="dim"))
    if agent.item_index is not None:
        console.print(_line("  item: ", preview(agent.item, 200)))
    if agent.node is not None:
        console.print(_line("  ran on Ray node ", clean(agent.node)))
    if agent.decision is not None and agent.decision.held:
        console.print(_line("  ", clean(describe_decision(agent.decision))))
    for attempt in agent.attempts:
        if attempt.status != "succeeded" or attempt.validation_error:
            console.print(_line("  ", describe_attempt(attempt)))
    if agent.reused:
        console.print(
            Text(f"  reused from agent run {agent.reused_from_run_id or '?'} (not called again)")
        )
    if agent.tool_calls:
        console.print(
            _line("  ", _tool_call_summary(agent.tool_calls), f" (agentops show-run {agent.id})")
        )
    if agent.status == "skipped":
        console.print(skip_reason(agent))
    elif agent.instances is not None:  # its output is its items' outputs, shown below
        if agent.status != "succeeded":
            console.print(_line(agent.status or "?", ": ", clean(agent.error) or "-"))
    elif agent.status == "succeeded":
        _print_block(console, _output_text(agent))
    else:
        console.print(_line(agent.status or "?", ": ", clean(agent.error) or "-"))


def _more_items(hidden: int, agent: AgentRunRecord, workflow_run_id: int) -> Text:
    return _line(
        f"… {hidden} more items of ",
        clean(agent.agent),
        f": agentops show-workflow-run {workflow_run_id} --all (or --json)",
    )


def fan_out_summary(agent: AgentRunRecord) -> str:
    """ "fan-out over 10 items: 8 succeeded, 1 failed, 1 not run"."""
    counts = _item_statuses(agent)
    return f"fan-out over {plural(_item_count(agent), 'item')}" + (f": {counts}" if counts else "")


def _item_count(agent: AgentRunRecord) -> int:
    return agent.item_count if agent.item_count is not None else len(agent.instances or ())


def _item_statuses(agent: AgentRunRecord) -> str:
    """ "8 succeeded, 1 failed, 1 not run": a fan-out's instances by status, and the items
    that never started (the cost cap or a stop left them)."""
    counts: dict[str, int] = {}
    for instance in agent.instances or ():
        status = _table_status(instance)
        counts[status] = counts.get(status, 0) + 1
    not_run = _item_count(agent) - len(agent.instances or ())
    if not_run > 0:
        counts["not run"] = not_run
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def skip_reason(run: AgentRunRecord) -> Text:
    """Why an agent was skipped, its cause first: routed away (its ``when`` was false), a
    dependency that did not succeed, or the cost cap."""
    reason = clean(run.error)
    if run.skip_cause == "routed":
        if not run.error and run.decision is not None:
            reason = clean(describe_decision(run.decision))
        return _line("routed away: ", reason or "-")
    if run.skip_cause == "cost_cap":
        return _line("skipped (cost cap): ", reason or "-")
    return _line("skipped: ", reason or "-")


def describe_decision(decision: Decision) -> str:
    """ "when triage.output.label == 'bug' held (triage.output.label: "bug")"."""
    verdict = "held" if decision.held else "was false"
    values = ", ".join(
        f"{path}: {json.dumps(value, ensure_ascii=False, default=str)}"
        for path, value in decision.values.items()
    )
    return f"when {decision.expression} {verdict}" + (f" ({one_line(values)})" if values else "")


def show_agent_run(reader: HistoryReader, agent_run_id: int, *, json_output: bool = False) -> None:
    """``show-run RUN_ID``: one agent run with its prompt, attempts and output."""
    run = reader.agent_run(agent_run_id)
    if json_output:
        print_json(run.to_json(detail=True))
        return
    console = make_console()
    console.print(_agent_run_heading(run))
    console.print(
        _line(
            "  provider ",
            clean(run.provider) or "-",
            " · finished ",
            short_time(run.finished_at),
            " UTC",
            *((" · ran on Ray node ", clean(run.node)) if run.node is not None else ()),
        )
    )
    if run.item_index is not None:
        console.print(_line(f"  item {run.item_index} of ", clean(run.agent), ": "))
        _print_block(console, run.item)
    if run.item_count is not None:
        console.print(
            Text(
                f"  fan-out over {plural(run.item_count, 'item')}: each is an agent run of its "
                f"own (agentops show-workflow-run {run.workflow_run_id})"
            )
        )
    if run.decision is not None:
        console.print(_line("  ", clean(describe_decision(run.decision))))
    if run.reused:
        console.print(
            Text(f"  reused from agent run {run.reused_from_run_id or '?'} (not called again)")
        )
    if run.attempts:
        console.print(_attempts_table(console, run.attempts))
    if run.tool_calls:
        console.print(Text(_tool_call_summary(run.tool_calls) + ":"))
        console.print(_tool_calls_table(console, run.tool_calls))
    if run.status == "skipped":
        console.print(skip_reason(run))
    elif run.error:
        console.print(_line("Error: ", clean(run.error)))
    console.print(Rule("Prompt", align="left", style="dim"))
    _print_block(console, run.prompt)
    console.print(Rule("Output", align="left", style="dim"))
    _print_block(console, _output_text(run))


def _output_text(run: AgentRunRecord) -> str | None:
    """The output as shown: an agent's parsed answer (output schema) pretty-printed as JSON."""
    if run.value is None:
        return run.output
    return json.dumps(run.parsed_value, indent=2, ensure_ascii=False)


def show_costs(
    reader: HistoryReader,
    *,
    by: CostGrouping = CostGrouping.workflow,
    since: str | None = None,
    until: str | None = None,
    json_output: bool = False,
) -> None:
    """``costs``: spend and tokens grouped by workflow, model or day, between two dates."""
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    if first and last and first > last:
        raise UsageError(f"--since {first} is after --until {last}; swap them")
    bounds = (
        first.isoformat() if first else None,
        (last + timedelta(days=1)).isoformat() if last else None,  # --until is inclusive
    )
    groups = reader.spend(by=by, since=bounds[0], until=bounds[1])
    totals = reader.spend(by=None, since=bounds[0], until=bounds[1])
    total = totals[0] if totals else CostGroup("total", 0, 0, 0, 0, False, 0.0, 0)
    if json_output:
        print_json(
            {
                "by": by.value,
                "since": first.isoformat() if first else None,
                "until": last.isoformat() if last else None,
                "groups": [group.to_json() for group in groups],
                "total": total.to_json(),
            }
        )
        return
    console = make_console()
    period = (
        f"{first or 'the first run'} to {last or 'today'} (UTC days)"
        if first or last
        else "all recorded runs"
    )
    if not groups:
        console.print(Text(f"No agent runs in {period} in {reader.location}."))
        return
    console.print(Text(f"Spend by {by.value}, {period}"))
    columns = [
        Column(by.value, cap=40),
        Column("workflow runs", "right"),
        Column("agent runs", "right"),
        Column("tokens", "right"),
        Column("cost", "right"),
    ]
    table = fitted_table(
        console, columns, [_cost_row(group) for group in groups], footer=_cost_row(total)
    )
    console.print(table)
    if total.unpriced_runs:
        console.print(
            Text(
                f"Cost unknown for {plural(total.unpriced_runs, 'agent run')} (no price for the model); not included above."
            )
        )


def show_cache_stats(reader: HistoryReader, *, json_output: bool = False) -> None:
    """``cache stats``: per workflow, the cached answers, their size, the hits and what they saved."""
    stats = reader.cache_stats()
    if json_output:
        print_json([stat.to_json() for stat in stats])
        return
    console = make_console()
    if not stats:
        console.print(
            Text(f"The response cache in {reader.location} is empty, and no hit is recorded.")
        )
        return
    columns = [
        Column("workflow", cap=40),
        Column("entries", "right"),
        Column("size", "right"),
        Column("hits", "right"),
        Column("saved", "right"),
    ]
    rows = [
        [
            clean(stat.workflow),
            Text(str(stat.entries)),
            Text(_size(stat.size)),
            Text(str(stat.hits)),
            Text(format_cost(stat.saved)),
        ]
        for stat in stats
    ]
    console.print(fitted_table(console, columns, rows))


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    amount = float(size)
    for unit in ("KB", "MB", "GB"):
        amount /= 1024
        if amount < 1024 or unit == "GB":
            break
    return f"{amount:.1f} {unit}"


# --- pieces --------------------------------------------------------------------------------------


def show_batches(reader: HistoryReader, *, limit: int = 20, json_output: bool = False) -> None:
    """``list-batches``: newest first, with rows done and spend against the cap."""
    batches = reader.batches(limit=limit)
    if json_output:
        print_json([record.to_json() for record in batches])
        return
    console = make_console()
    if not batches:
        console.print(Text(f"No batches recorded yet in {reader.location}."))
        return
    # The data file and the cap are left to show-batch: with them the table overflows 80 columns.
    columns = [
        Column("id", "right"),
        Column("workflow", cap=20),
        Column("status"),
        Column("rows", "right"),
        Column("failed", "right"),
        Column("skipped", "right"),
        Column("cost", "right"),
        Column("started (UTC)"),
    ]
    rows = [
        [
            Text(str(record.id)),
            clean(record.workflow),
            Text(record.status),
            Text(f"{record.rows_done}/{record.row_count}"),
            Text(str(record.rows_failed)),
            Text(str(record.rows_skipped)),
            Text(format_cost(record.cost)),
            Text(short_time(record.started_at)[5:16]),
        ]
        for record in batches
    ]
    table = fitted_table(console, columns, rows)
    console.print(table)


def show_batch(
    reader: HistoryReader, batch_id: int, *, json_output: bool = False, limit: int = 20
) -> None:
    """``show-batch ID``: the batch, its progress, and its first rows that did not succeed."""
    record = reader.batch(batch_id)
    counts = reader.batch_progress(batch_id)
    problems: list[RowOutcome] = []
    for outcome in reader.batch_row_outcomes(batch_id):
        if outcome.status != "succeeded" and len(problems) < limit:
            problems.append(outcome)
    if json_output:
        print_json(
            {
                **record.to_json(),
                "progress": counts,
                "rows_not_succeeded": [p.to_json() for p in problems],
            }
        )
        return
    console = make_console()
    console.print(
        _line("Batch ", str(record.id), " · ", clean(record.workflow), " · ", record.status)
    )
    done = sum(counts.values())
    console.print(
        _line(
            "  ",
            clean(record.data_path),
            f" (sha256 {record.data_sha256[:12]}) · {done}/{record.row_count} rows run: ",
            ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
            or "none yet",
        )
    )
    facts = [f"started {short_time(record.started_at)} UTC"]
    if record.finished_at:
        facts.append(f"finished {short_time(record.finished_at)} UTC")
    if record.input_map:
        facts.append("map " + ", ".join(f"{k}={v}" for k, v in record.input_map.items()))
    console.print(_line("  ", " · ".join(facts)))
    cap = "no cap" if record.cost_cap is None else format_cap(record.cost_cap) + " cap"
    console.print(
        _line(
            "  cost ",
            format_cost(record.cost),
            f" ({cap}) · tokens ",
            _tokens(record.input_tokens, record.output_tokens, False),
            f" · rate-limit pauses {record.pauses} ({record.paused_seconds:.1f}s)"
            if record.pauses
            else "",
        )
    )
    for outcome in problems:
        console.print(
            _line(
                f"  row {outcome.row} ",
                outcome.status,
                f" (workflow run {outcome.workflow_run_id}): ",
                clean(one_line(outcome.error or "")),
            )
        )
    if record.status != "succeeded" and record.status != "running":
        console.print(Text(f"  resume with: agentops resume-batch {record.id}"))


def make_console() -> Console:
    return Console(highlight=False, emoji=False, markup=False, soft_wrap=True)


def print_json(data: Any) -> None:
    import typer

    typer.echo(json.dumps(data, indent=2))


def clean(text: str | None) -> Text:
    """Untrusted text (a name, an error, an output) made inert for the terminal."""
    return Text(sanitize(text or ""))


def preview(text: str | None, width: int = PREVIEW_WIDTH) -> Text:
    """The start of ``text`` on one line, "…" when cut."""
    return Text(_cut(one_line(text or ""), width))


def short_time(iso: str | None) -> str:
    """ "2024-05-01 12:00:03" from a stored timestamp ("-" when missing)."""
    return iso[:19].replace("T", " ") if iso else "-"


def _attempt_status(attempt: AttemptRecord) -> str:
    """``invalid``: the call worked, its answer did not follow the schema; ``cached``: no call."""
    if attempt.validation_error:
        return "invalid"
    return "cached" if attempt.cached else attempt.status


def describe_attempt(attempt: AttemptRecord) -> Text:
    """ "attempt 1 failed after 0.4s (HTTP 503): ServerError: upstream busy"."""
    text = Text(f"attempt {attempt.number} {attempt.status}")
    if attempt.cached:
        text.append(" from the cache")
    elif attempt.duration is not None:
        text.append(f" after {format_duration(attempt.duration)}")
    if attempt.http_status is not None:
        text.append(f" (HTTP {attempt.http_status})")
    error = _attempt_error(attempt)
    if error:
        text.append(": ")
        text.append_text(preview(error, 300))
    return text


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. {option} 2024-05-01"
        ) from None


def _require_workflow(reader: HistoryReader, workflow: str) -> None:
    if reader.workflow_is_recorded(workflow):
        return
    known = reader.workflow_names(limit=None)
    if not known:
        raise RunNotFoundError(f"no workflow runs recorded yet in {reader.location}")
    hint = did_you_mean(workflow, known) or f"; recorded workflows: {', '.join(known[:10])}"
    raise RunNotFoundError(f"no runs of workflow {workflow!r} in {reader.location}{hint}")


def _line(*parts: str | Text) -> Text:
    """Our own words (plain strings) and cleaned untrusted text, joined as one Text."""
    text = Text()
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        else:
            text.append(part)
    return text


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _tokens(input_tokens: int, output_tokens: int, estimated: bool) -> str:
    return format_tokens(Usage(input_tokens, output_tokens, estimated))


def _group_tokens(group: CostGroup) -> str:
    return _tokens(group.input_tokens, group.output_tokens, group.tokens_estimated)


_SKIPPED_FOR = {"routed": "routed away", "cost_cap": "skipped (cost cap)"}


def _status(run: AgentRunRecord) -> str:
    if run.reused:
        return "succeeded (reused)"
    if run.status == "skipped" and run.skip_cause in _SKIPPED_FOR:
        return _SKIPPED_FOR[run.skip_cause]
    return run.status or "?"


def _table_status(run: AgentRunRecord) -> str:
    return "reused" if run.reused else _status(run)


def _attempt_error(attempt: AttemptRecord) -> str:
    """The error with its type in front, once (the engine's message may start with it already);
    for an answer that did not follow the output schema, why."""
    if attempt.validation_error and not attempt.error:
        return f"invalid answer: {attempt.validation_error}"
    error = attempt.error or ""
    if attempt.error_type and not error.startswith(attempt.error_type):
        return f"{attempt.error_type}: {error}" if error else attempt.error_type
    return error


def _cost_row(group: CostGroup) -> list[Text]:
    return [
        clean(group.key),
        Text(str(group.workflow_runs)),
        Text(str(group.agent_runs)),
        Text(_group_tokens(group)),
        Text(format_cost(group.cost)),
    ]


def _print_block(console: Console, text: str | None) -> None:
    """A whole output or prompt, unwrapped (the terminal wraps), so it copies as it was."""
    console.print(clean(text) if text else Text("(none)"), soft_wrap=True)


def _agent_run_heading(run: AgentRunRecord) -> Text:
    if run.reused:  # not called in this run: its tokens, cost and attempts belong to the original
        facts = [
            _status(run),
            run.model or "-",
            f"from agent run {run.reused_from_run_id or '?'}",
            f"workflow run {run.workflow_run_id}",
        ]
        return _line(
            f"Agent run {run.id} · ",
            clean(run.name),
            " of ",
            clean(run.workflow),
            " · ",
            " · ".join(facts),
        )
    facts = [
        _status(run),
        run.model or "-",
        _tokens(run.input_tokens, run.output_tokens, run.tokens_estimated) + " tokens",
        format_cost(run.cost),
        format_duration(run.duration),
        plural(len(run.attempts), "attempt")
        if run.attempts
        else plural((run.retries or 0) + 1, "attempt"),
        f"workflow run {run.workflow_run_id}",
    ]
    return _line(
        f"Agent run {run.id} · ",
        clean(run.name),
        " of ",
        clean(run.workflow),
        " · ",
        " · ".join(facts),
    )


@dataclass(frozen=True)
class Column:
    title: str
    justify: JustifyMethod = "left"
    cap: int | None = None  # set: a flexible column, at most this wide...
    floor: int = 8  # ...and narrowed down to this when the console is narrow


def fitted_table(
    console: Console,
    columns: list[Column],
    rows: list[list[Text]],
    footer: list[Text] | None = None,
) -> Table:
    """A one-line-per-row table that fits the console: fixed columns keep their width,
    flexible ones (last first) give way, and cut text ends with "…"."""
    cells = [[Text(column.title) for column in columns], *rows, *([footer] if footer else [])]
    widths = [max(row[k].cell_len for row in cells) for k in range(len(columns))]
    widths = [
        min(width, column.cap) if column.cap else width
        for width, column in zip(widths, columns, strict=True)
    ]
    excess = sum(widths) + 3 * (len(columns) - 1) - console.width  # 3: padding and the divider
    for k in reversed(range(len(columns))):
        if excess <= 0:
            break
        if columns[k].cap:
            cut = max(0, min(excess, widths[k] - columns[k].floor))
            widths[k] -= cut
            excess -= cut
    table = Table(
        box=box.SIMPLE if footer else box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        show_footer=footer is not None,
    )
    for k, column in enumerate(columns):
        table.add_column(
            column.title,
            justify=column.justify,
            no_wrap=True,
            overflow="ellipsis",
            width=widths[k],
            footer=footer[k] if footer else "",
        )
    for row in rows:
        table.add_row(*row)
    return table


def _agent_runs_table(console: Console, runs: list[AgentRunRecord]) -> Table:
    columns = [
        Column("id", "right"),
        Column("run", "right"),
        Column("workflow", cap=24),
        Column("agent", cap=24),
        Column("status"),
        Column("tokens", "right"),
        Column("cost", "right"),
        Column("output", cap=60, floor=10),
    ]
    rows = [
        [
            Text(str(run.id)),
            Text(str(run.workflow_run_id if run.workflow_run_id is not None else "-")),
            clean(run.workflow),
            clean(run.name),
            Text(_table_status(run)),
            Text(_tokens(run.input_tokens, run.output_tokens, run.tokens_estimated)),
            Text(format_cost(run.cost)),
            preview(run.output if run.status == "succeeded" else run.error),
        ]
        for run in runs
    ]
    return fitted_table(console, columns, rows)


def _workflow_runs_table(console: Console, runs: list[WorkflowRunRecord]) -> Table:
    # Tokens are left to show-workflow-run and costs: with them the table overflows 80 columns.
    columns = [
        Column("id", "right"),
        Column("workflow", cap=30),
        Column("status"),
        Column("started (UTC)"),
        Column("time", "right"),
        Column("agents", "right"),
        Column("cost", "right"),
        Column("from", "right"),
    ]
    rows = [
        [
            Text(str(run.id)),
            clean(run.workflow),
            Text(run.status),
            Text(short_time(run.started_at)[:16]),
            Text(format_duration(run.duration)),
            Text(f"{run.agents_succeeded}/{run.agents_total}"),
            Text(format_cost(run.cost)),
            Text(str(run.resumed_from) if run.resumed_from is not None else ""),
        ]
        for run in runs
    ]
    return fitted_table(console, columns, rows)


def _agents_table(console: Console, agents: list[AgentRunRecord], limit: int | None) -> Table:
    """One row per agent; a fan-out agent's with its item count, statuses and spend (its
    instances'), then its instances indented (the first ``limit``; None: all)."""
    columns = [
        Column("agent", cap=30),
        Column("run id", "right"),
        Column("status"),
        Column("attempts", "right"),
        Column("model", cap=30),
        Column("tokens", "right"),
        Column("cost", "right"),
        Column("time", "right"),
    ]
    rows: list[list[Text]] = []

    def add(agent: AgentRunRecord, indent: str) -> None:
        if agent.iteration_runs is not None:  # a loop's member: its spend is its iterations'
            rows.append(_agent_row(agent, indent=indent, note=f" (×{agent.iterations or 0})"))
            for iteration in agent.iteration_runs:
                add(iteration, indent + "  ")
            return
        if agent.instances is None:
            rows.append(_agent_row(agent, indent=indent))
            return
        rows.append(_fan_out_row(agent, indent))
        rows.extend(
            _agent_row(instance, indent=indent + "  ") for instance in agent.instances[:limit]
        )
        hidden = len(agent.instances) - len(agent.instances[:limit])
        if hidden:
            more = [Text(indent + "  …"), Text(""), Text(f"{hidden} more: --all")]
            rows.append(more + [Text("") for _ in columns[len(more) :]])

    for agent in agents:
        add(agent, "")
    return fitted_table(console, columns, rows)


def _agent_row(agent: AgentRunRecord, indent: str = "", note: str = "") -> list[Text]:
    return [
        _line(indent, clean(agent.name), note),
        Text(str(agent.id)),
        Text(_table_status(agent)),
        Text(str(len(agent.attempts))),
        clean(agent.model or "-"),
        Text(_tokens(agent.input_tokens, agent.output_tokens, agent.tokens_estimated)),
        Text(format_cost(agent.cost)),
        Text(format_duration(agent.duration)),
    ]


def _fan_out_row(agent: AgentRunRecord, indent: str = "") -> list[Text]:
    """A fan-out agent's row: its items, how many succeeded ("failed 2/3"; its section has
    every status), and what its instances spent (called in this run: a reused one was paid
    for by its own run)."""
    called = [i for i in agent.instances or () if not i.reused]
    done = sum(i.status == "succeeded" for i in agent.instances or ())
    status = f"{_table_status(agent)} {done}/{_item_count(agent)}"
    costs = [i.cost for i in called]
    return [
        _line(indent, clean(agent.name), f" ({plural(_item_count(agent), 'item')})"),
        Text(str(agent.id)),
        Text(status),
        Text(str(sum(len(i.attempts) for i in called))),
        clean(agent.model or "-"),
        Text(
            _tokens(
                sum(i.input_tokens for i in called),
                sum(i.output_tokens for i in called),
                any(i.tokens_estimated for i in called),
            )
        ),
        Text(format_cost(None if None in costs else sum(c or 0.0 for c in costs))),
        Text(format_duration(agent.duration)),
    ]


def _attempts_table(console: Console, attempts: list[AttemptRecord]) -> Table:
    turns = any(attempt.turn > 1 for attempt in attempts)  # a tool loop: say which turn each made
    columns = [
        Column("#", "right"),
        *([Column("turn", "right")] if turns else []),
        Column("status"),
        Column("http", "right"),
        Column("time", "right"),
        Column("tokens", "right"),
        Column("cost", "right"),
        Column("error", cap=100, floor=10),
    ]
    rows = [
        [
            Text(str(attempt.number)),
            *([Text(str(attempt.turn))] if turns else []),
            Text(_attempt_status(attempt)),
            Text(str(attempt.http_status or "")),
            Text(format_duration(attempt.duration)),
            Text(_tokens(attempt.input_tokens, attempt.output_tokens, attempt.tokens_estimated)),
            Text(format_cost(attempt.cost)),
            preview(_attempt_error(attempt), 100),
        ]
        for attempt in attempts
    ]
    return fitted_table(console, columns, rows)


def _tool_call_summary(calls: list[ToolCallRow]) -> str:
    failed = sum(call.status != "succeeded" for call in calls)
    turns = len({call.turn for call in calls})
    text = f"{plural(len(calls), 'tool call')} in {plural(turns, 'turn')}"
    return text + (f", {failed} failed" if failed else "")


def _tool_calls_table(console: Console, calls: list[ToolCallRow]) -> Table:
    columns = [
        Column("turn", "right"),
        Column("tool", cap=30),
        Column("arguments", cap=40, floor=10),
        Column("status"),
        Column("time", "right"),
        Column("result / error", cap=60, floor=10),
    ]
    rows = [
        [
            Text(str(call.turn)),
            clean(call.tool),
            preview(call.arguments, 40),
            Text(call.status),
            Text(format_duration(call.duration)),
            preview(call.result if call.status == "succeeded" else call.error, 60),
        ]
        for call in calls
    ]
    return fitted_table(console, columns, rows)


def _print_server(console: Console, server: ToolServerRow) -> None:
    """An MCP server the run started, with the end of its stderr (kept here, never in the live view)."""
    tools = ", ".join(server.tools) or "no tools"
    heading = _line(
        "MCP server ", clean(server.name), f" ({server.transport}: ", clean(server.target), ")"
    )
    console.print(Rule(heading, align="left", style="dim"))
    console.print(_line("  tools: ", clean(tools)))
    if server.stderr and server.stderr.strip():
        lines = server.stderr.rstrip().splitlines()[-STDERR_LINES_SHOWN:]
        console.print(Text(f"  stderr (last {len(lines)} lines; --json has up to 64 KB):"))
        for line in lines:
            console.print(_line("    ", clean(line)))


STDERR_LINES_SHOWN = 20
