"""The end-of-run report: a table of every agent (status, attempts, tokens,
cost, duration) with totals, the agents routed away and why, the reasons agents
failed or were skipped, and the full final outputs of the agents nothing depends
on (the graph's sinks).

A fan-out agent is one row (its items by status, "failed (3/5 ✓ 2 failed)", and
their attempts, tokens and cost summed); its items that did not succeed are
listed under the problems, the first ``ITEM_PROBLEMS`` of them. An agent routed
away is neither a success nor a problem: the counts name it apart ("3/4 agents
succeeded, 1 routed away"), and a run whose only non-successes were routed away
succeeded. Agent counts are of the workflow's agents, never of fan-out items.

All model text and error messages pass through ``sanitize`` and are rendered as
``rich.text.Text``, never as markup.
"""

from __future__ import annotations

from rich import box
from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from agentops.runtime.events import AgentResult, AgentStatus, SkipCause, WorkflowResult
from agentops.ui.format import (
    ROUTED,
    ROUTED_MARK,
    STATUS_STYLES,
    attempt_count,
    format_cost,
    format_duration,
    format_spend,
    format_tokens,
    shown_status,
    status_label,
)
from agentops.ui.sanitize import one_line, sanitize
from agentops.workflow.graph import WorkflowGraph
from agentops.workflow.spec import Workflow

ITEM_PROBLEMS = 5  # a fan-out's items that did not succeed, listed; the rest are counted


def summary_table(result: WorkflowResult, *, styled: bool = True) -> Table:
    """One row per agent plus a totals footer; reused agents count nothing this run."""
    table = Table(
        box=box.SIMPLE_HEAD if styled else box.ASCII2,
        show_footer=True,
        header_style="bold" if styled else "",
        footer_style="bold" if styled else "",
    )
    agents = list(result.agents.values())
    unknown_cost = any(a.cost is None for a in agents if not a.reused)
    routed = _routed(agents)
    table.add_column("agent", footer="total")
    table.add_column(
        "status",
        footer=f"{sum(a.status is AgentStatus.SUCCEEDED for a in agents)}/{len(agents)} ok"
        + (f", {len(routed)} routed" if routed else ""),
    )
    table.add_column(
        "attempts",
        justify="right",
        footer=str(sum(attempt_count(a) for a in agents if not a.reused)),
    )
    table.add_column("tokens", justify="right", footer=format_tokens(result.usage))
    table.add_column(
        "cost", justify="right", footer=format_cost(result.cost) + ("+?" if unknown_cost else "")
    )
    table.add_column(
        "duration", justify="right", footer=format_duration(result.finished_at - result.started_at)
    )
    for agent in agents:
        label = status_label(agent)
        attempts = attempt_count(agent)
        called = agent.reused or attempts > 0
        style = STATUS_STYLES.get(shown_status(agent.status, agent.skip_cause), "")
        table.add_row(
            Text(one_line(agent.name)),
            Text(label, style=style if styled else ""),
            "-" if agent.reused else str(attempts),
            format_tokens(agent.usage) if called else "-",
            format_cost(agent.cost) if called else "-",
            format_duration(agent.duration),
        )
    return table


def run_line(result: WorkflowResult) -> Text:
    """The one-line verdict: "workflow demo succeeded in 5.2s: 3/3 agents succeeded, 500+200 tokens, $0.0034 of $1.00 cap"."""
    agents = list(result.agents.values())
    succeeded = sum(a.status is AgentStatus.SUCCEEDED for a in agents)
    routed = _routed(agents)
    unknown = any(a.cost is None for a in agents if not a.reused)
    return Text(
        f"workflow {one_line(result.workflow)} {result.status} in "
        f"{format_duration(result.finished_at - result.started_at)}: "
        f"{succeeded}/{len(agents)} agents succeeded, "
        + (f"{len(routed)} {ROUTED}, " if routed else "")
        + f"{format_tokens(result.usage)} tokens, "
        f"{format_spend(result.cost, unknown, result.cost_cap, earlier=result.spent_before)}"
    )


def _routed(agents: list[AgentResult]) -> list[AgentResult]:
    return [a for a in agents if a.skip_cause is SkipCause.ROUTED]


def routed_lines(result: WorkflowResult) -> list[Text]:
    """Each agent routed away, with the decision: "↷ fix_bug routed away: when ... was false (...)"."""
    return [
        Text(f"{ROUTED_MARK} {one_line(agent.name)} {ROUTED}: {one_line(agent.error or '')}")
        for agent in _routed(list(result.agents.values()))
    ]


def problem_lines(result: WorkflowResult) -> list[Text]:
    """Why each failed, skipped or cancelled agent (or fan-out item) did not succeed."""
    lines = []
    for agent in result.agents.values():
        if agent.skip_cause is SkipCause.ROUTED:
            continue
        if agent.status in (AgentStatus.FAILED, AgentStatus.SKIPPED, AgentStatus.CANCELLED):
            lines.append(_problem(agent))
        items = [
            i
            for i in agent.instances or ()
            if i.status is not AgentStatus.SUCCEEDED and i.skip_cause is not SkipCause.ROUTED
        ]
        lines.extend(_problem(item, indent="  ") for item in items[:ITEM_PROBLEMS])
        if len(items) > ITEM_PROBLEMS:
            lines.append(
                Text(f"  … and {len(items) - ITEM_PROBLEMS} more items of {one_line(agent.name)}")
            )
    return lines


def _problem(agent: AgentResult, indent: str = "") -> Text:
    reason = f": {one_line(agent.error)}" if agent.error else ""
    return Text(f"{indent}{one_line(agent.name)} {agent.status}{reason}")


def final_outputs(
    result: WorkflowResult, workflow: Workflow | None, *, styled: bool = True
) -> list[RenderableType]:
    """A titled block per sink agent with its full (sanitized) output."""
    sinks = WorkflowGraph(workflow).sinks() if workflow is not None else []
    blocks: list[RenderableType] = []
    for name in sinks:
        agent = result.agents.get(name)
        if agent is None:
            continue
        title = Text(f"{one_line(name)} output")
        blocks.append(Rule(title, style="dim" if styled else "", characters="─" if styled else "-"))
        if agent.output is not None:
            blocks.append(Text(sanitize(agent.output)))
        else:
            blocks.append(
                Text(f"(no output: {status_label(agent)})", style="dim" if styled else "")
            )
    return blocks


def render_summary(
    result: WorkflowResult, workflow: Workflow | None, *, styled: bool = True
) -> Group:
    """Everything printed when a run ends, in order: table, routing, problems, outputs, verdict."""
    parts: list[RenderableType] = [summary_table(result, styled=styled)]
    parts.extend(routed_lines(result))
    parts.extend(problem_lines(result))
    parts.extend(final_outputs(result, workflow, styled=styled))
    parts.append(run_line(result))
    return Group(*parts)


def print_summary(
    console: Console, result: WorkflowResult, workflow: Workflow | None, *, styled: bool = True
) -> None:
    # Unstyled output goes to pipes and logs: keep model text unwrapped there, so it reads as written.
    console.print(
        render_summary(result, workflow, styled=styled), highlight=False, soft_wrap=not styled
    )
