"""What each page shows, as plain values for its template: the run list's query, a
run's graph boxes with their statuses, one agent's details, and the snapshot a live
page receives. No HTML here: the templates escape everything they are given."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from agentops.store.reader import HistoryReader
from agentops.store.records import (
    AgentRunRecord,
    AgentStart,
    AttemptRecord,
    ToolCallRow,
    WorkflowRunRecord,
)
from agentops.ui.format import format_cap, format_cost, format_duration
from agentops.web.layout import NODE_HEIGHT, NODE_WIDTH, Box, Drawing, draw
from agentops.web.state import (
    AgentState,
    NodeStatus,
    RunState,
    blueprint_of,
    combine,
    node_status,
    summary_of,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_LABEL_WIDTH = 22  # characters that fit in a box
# A group's status: the first of these any member has.
_GROUP_PRECEDENCE: tuple[NodeStatus, ...] = (
    "running",
    "failed",
    "waiting",
    "cancelled",
    "skipped",
    "succeeded",
)


@dataclass(frozen=True)
class RunListQuery:
    workflow: str | None = None
    status: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RunListQuery:
        return cls(
            workflow=params.get("workflow") or None,
            status=params.get("status") or None,
            before=_positive(params.get("before")),
            after=_positive(params.get("after")),
            limit=min(_positive(params.get("limit")) or PAGE_SIZE, MAX_PAGE_SIZE),
        )

    def link(self, **cursor: int) -> str:
        """This query with another cursor: ``link(before=ID)`` or ``link(after=ID)``."""
        params = {"workflow": self.workflow, "status": self.status, **cursor}
        if self.limit != PAGE_SIZE:
            params["limit"] = self.limit
        return "/?" + urlencode({k: v for k, v in params.items() if v is not None})


def _positive(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value < 2**63 else None


def expanded_groups(text: str | None) -> frozenset[str]:
    return frozenset(part for part in (text or "").split(",") if part) if text else frozenset()


# --- a run's graph -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BoxView:
    box: Box
    status: NodeStatus
    caption: str  # the second line: status and time, or a group's counts
    title: str  # the tooltip: full name, condition
    href: str
    critical: bool

    @property
    def label(self) -> str:
        text = self.box.label
        return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 1] + "…"


@dataclass(frozen=True)
class GraphView:
    boxes: list[BoxView]
    critical_lines: frozenset[tuple[str, str]]
    width: float
    height: float
    node_width: float = NODE_WIDTH
    node_height: float = NODE_HEIGHT


def graph_view(
    state: RunState, drawing: Drawing, expanded: frozenset[str] = frozenset()
) -> GraphView:
    run_id = state.run.id
    on_path = set(state.critical_path)
    boxes = []
    for box in drawing.boxes:
        members = [state.agents[name] for name in box.members if name in state.agents]
        status, caption = box_status(box, members)
        if box.is_group:
            href = f"/runs/{run_id}?" + urlencode(
                {"expand": ",".join(sorted({*expanded, box.key}))}
            )
            title = f"{box.label}: {', '.join(box.members[:12])}{' …' if len(box.members) > 12 else ''} (click to expand)"
        else:
            href = f"/runs/{run_id}/agents/{quote(box.key, safe='')}"
            condition = state.blueprint.conditions.get(box.key, "")
            title = box.key + (f"\ndepends on: {condition}" if condition else "")
        boxes.append(BoxView(box, status, caption, title, href, bool(on_path & set(box.members))))
    path_boxes = [drawing.box_of[name] for name in state.critical_path if name in drawing.box_of]
    critical = frozenset(itertools.pairwise(path_boxes))
    return GraphView(boxes, critical, drawing.width, drawing.height)


def box_status(box: Box, members: list[AgentState]) -> tuple[NodeStatus, str]:
    if not box.is_group:
        agent = members[0] if members else None
        if agent is None:
            return "waiting", "waiting"
        duration = agent.duration
        return agent.status, agent.status + (
            f" · {format_duration(duration)}" if duration is not None else ""
        )
    counts: dict[str, int] = {}
    for agent in members:
        counts[agent.status] = counts.get(agent.status, 0) + 1
    status: NodeStatus = next((s for s in _GROUP_PRECEDENCE if counts.get(s)), "waiting")
    caption = " ".join(f"{counts[s]} {s}" for s in _GROUP_PRECEDENCE if counts.get(s))
    return status, caption


def live_snapshot(
    reader: HistoryReader, workflow_run_id: int, expanded: frozenset[str]
) -> dict[str, Any]:
    """Everything a live run page updates: the run's figures, each box and each agent row."""
    header = reader.workflow_run_header(workflow_run_id)
    outcomes = reader.agent_outcomes(workflow_run_id)
    starts = reader.agent_starts(workflow_run_id)
    recorded = tuple(o.agent for o in outcomes) + tuple(s.agent for s in starts)
    state = combine(header.run, blueprint_of(header.definition, recorded), outcomes, starts)
    drawing = draw(state.blueprint, expanded)
    boxes = {}
    for box in drawing.boxes:
        status, caption = box_status(
            box, [state.agents[n] for n in box.members if n in state.agents]
        )
        boxes[box.key] = {"status": status, "caption": caption}
    return {
        "run": run_figures(state),
        "boxes": boxes,
        "agents": {name: _agent_figures(agent) for name, agent in state.agents.items()},
    }


def run_figures(state: RunState) -> dict[str, Any]:
    run = state.run
    return {
        "status": run.status,
        "cost": format_cost(run.cost),
        "cost_value": run.cost,
        "cap": format_cap(run.cost_cap),
        "tokens": f"{'~' if run.tokens_estimated else ''}{run.input_tokens}+{run.output_tokens}",
        "settled": f"{state.settled}/{len(state.agents)}",
        "duration": format_duration(run.duration),
        "critical_path": " → ".join(state.critical_path),
        "critical_seconds": format_duration(state.critical_seconds) if state.critical_path else "-",
    }


def _agent_figures(agent: AgentState) -> dict[str, Any]:
    figures = summary_of(agent)
    figures["cost"] = format_cost(figures["cost"]) if agent.outcome else ""
    figures["duration"] = format_duration(figures["duration"]) if agent.outcome else ""
    return figures


# --- one agent ----------------------------------------------------------------------------------


@dataclass
class AgentView:
    run: WorkflowRunRecord
    name: str
    status: NodeStatus
    model: str | None
    provider: str | None
    condition: str
    record: AgentRunRecord | None
    start: AgentStart | None
    output_json: str | None  # the output pretty-printed, when it is a JSON object or array
    tool_calls: list[ToolCallRow] = field(default_factory=list)

    @property
    def prompt(self) -> str | None:
        if self.record is not None:
            return self.record.prompt
        return self.start.prompt if self.start else None


def agent_view(reader: HistoryReader, workflow_run_id: int, name: str) -> AgentView | None:
    header = reader.workflow_run_header(workflow_run_id)
    record = reader.agent_run_in(workflow_run_id, name)
    start = None if record is not None else reader.agent_start(workflow_run_id, name)
    blueprint = blueprint_of(header.definition, (name,) if record or start else ())
    if name not in blueprint.names and record is None and start is None:
        return None
    status: NodeStatus
    if record is not None:
        status = node_status(record.status or "")
    elif start is not None:
        status = "running" if header.run.status == "running" else "cancelled"
    else:
        status = "waiting"
    tool_run = record.reused_from_run_id or record.id if record is not None else None
    return AgentView(
        run=header.run,
        name=name,
        status=status,
        model=(record.model if record else None)
        or (start.model if start else None)
        or blueprint.models.get(name),
        provider=(record.provider if record else None) or (start.provider if start else None),
        condition=blueprint.conditions.get(name, ""),
        record=record,
        start=start,
        output_json=pretty_json(record.output) if record is not None else None,
        tool_calls=reader.tool_calls(tool_run) if tool_run is not None else [],
    )


def pretty_json(text: str | None) -> str | None:
    """``text`` indented, when it is a JSON object or array (a model's structured answer)."""
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # a model's answer: anything, nested past the stack too
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def _tokens(record: AgentRunRecord | AttemptRecord) -> str:
    return f"{'~' if record.tokens_estimated else ''}{record.input_tokens}+{record.output_tokens}"


def _time(text: str | None) -> str:
    """ "2024-05-01 12:00:03" (UTC) from a stored timestamp."""
    return text[:19].replace("T", " ") if text else "-"


FILTERS: dict[str, Callable[..., str]] = {
    "cost": format_cost,
    "cap": format_cap,
    "duration": format_duration,
    "time": _time,
    "tokens": _tokens,
    "quote": lambda text: quote(str(text), safe=""),
}
