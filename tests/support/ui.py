"""Synthetic engine events for the terminal UI tests: real event dataclasses
and a real loaded Workflow, built by hand so every field is known."""

from __future__ import annotations

import io

from rich.console import Console

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStatus,
    Attempt,
    Event,
    RunStatus,
    Usage,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.ui.live import LiveReporter
from agentops.ui.reporter import Reporter
from agentops.workflow.loader import load_workflow_text
from agentops.workflow.spec import Workflow

DEMO_YAML = """\
name: demo
policies: {cost_cap: 1.0}
agents:
  - {name: researcher, model: gpt-4o, task: research}
  - {name: critic, model: gpt-4o, task: criticise}
  - {name: summarizer, model: gpt-4o, task: summarise, depends_on: [researcher, critic]}
"""


def demo_workflow() -> Workflow:
    return load_workflow_text(DEMO_YAML, filename="demo.yaml").workflow


def many_agents_workflow(count: int, *, cost_cap: float | None = None) -> Workflow:
    policies = f"policies: {{cost_cap: {cost_cap}}}\n" if cost_cap is not None else ""
    agents = "".join(f"  - {{name: agent{i:03d}, model: gpt-4o, task: t}}\n" for i in range(count))
    return load_workflow_text(
        f"name: wide\n{policies}agents:\n{agents}", filename="wide.yaml"
    ).workflow


def started(
    workflow: Workflow,
    *,
    at: float = 1000.0,
    reused: dict[str, AgentResult] | None = None,
    resumed_from: int | None = None,
    cost_cap: float | None = None,
    spent_before: float = 0.0,
) -> WorkflowStarted:
    return WorkflowStarted(
        workflow=workflow,
        source="",
        source_path=None,
        inputs={},
        started_at=at,
        resumed_from=resumed_from,
        reused=reused or {},
        cost_cap=cost_cap,
        spent_before=spent_before,
    )


def succeeded_result(
    name: str,
    *,
    output: str = "done",
    usage: Usage | None = None,
    cost: float | None = 0.0012,
    started_at: float = 1000.0,
    finished_at: float = 1002.3,
    attempts: int = 1,
) -> AgentResult:
    usage = usage or Usage(120, 45)
    tries = [
        Attempt(n, "failed", started_at, 0.1, error="ServerError: 503") for n in range(1, attempts)
    ] + [Attempt(attempts, "succeeded", started_at, 1.0, usage=usage, cost=cost)]
    return AgentResult(
        name,
        AgentStatus.SUCCEEDED,
        "gpt-4o",
        "openai",
        output=output,
        usage=usage,
        cost=cost,
        attempts=tries,
        started_at=started_at,
        finished_at=finished_at,
    )


def finished(result: AgentResult) -> AgentFinished:
    return AgentFinished(result)


def workflow_result(
    agents: list[AgentResult],
    *,
    status: RunStatus = RunStatus.SUCCEEDED,
    cost_cap: float | None = 1.0,
) -> WorkflowResult:
    return WorkflowResult(
        workflow="demo",
        status=status,
        agents={a.name: a for a in agents},
        started_at=1000.0,
        finished_at=1005.0,
        cost_cap=cost_cap,
    )


def text_console(*, terminal: bool, width: int = 120, height: int | None = None) -> Console:
    return Console(file=io.StringIO(), force_terminal=terminal, width=width, height=height)


def output_of(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


# --- the live view as a terminal shows it ---------------------------------------------


class FixedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def render(reporter: LiveReporter, *, width: int = 100, height: int = 40) -> str:
    """The view as a terminal of ``width`` x ``height`` would show it, as plain text."""
    console = Console(
        file=io.StringIO(), force_terminal=True, width=width, height=height, record=True
    )
    console.print(reporter.view)
    return console.export_text(styles=False)


def row(view: str, name: str) -> str:
    matches = [line for line in view.splitlines() if line.strip().startswith(name + " ")]
    assert len(matches) == 1, f"no single row for {name} in:\n{view}"
    return " ".join(matches[0].split())


def feed(reporter: Reporter, events: list[Event]) -> None:
    for event in events:
        reporter(event)
