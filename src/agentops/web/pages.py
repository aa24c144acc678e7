"""What each page shows, as plain values for its template: the run list's query, a
run's graph boxes with their statuses, one agent's details, and the snapshot a live
page receives. No HTML here: the templates escape everything they are given.

A fan-out agent's box reads ``writer ×5`` with its items by status as a caption and a
bar of one segment per status (positions computed here, so the live script only sets
attributes); it links to its items' list on the run page, opened (``?open=writer``). A
routed-away agent's box reads "routed away", its decision in the tooltip."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from agentops.runtime.events import Decision, split_run_key
from agentops.store.reader import HistoryReader
from agentops.store.records import (
    AgentOutcome,
    AgentRunRecord,
    AgentStart,
    AttemptRecord,
    ToolCallRow,
    WorkflowRunRecord,
)
from agentops.ui.format import format_cap, format_cost, format_duration
from agentops.web.layout import NODE_HEIGHT, NODE_WIDTH, Box, Drawing, draw
from agentops.web.state import (
    ROUTED_LABEL,
    AgentState,
    FanOutState,
    ItemState,
    NodeStatus,
    RunState,
    blueprint_of,
    combine,
    node_status,
    recorded_agents,
    run_state,
    summary_of,
)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_LABEL_WIDTH = 22  # characters that fit in a box
# A group's status: the first of these any member has.
_GROUP_PRECEDENCE: tuple[NodeStatus, ...] = (
    "running",
    "approval",
    "failed",
    "waiting",
    "cancelled",
    "skipped",
    "succeeded",
    "routed",
)
# A fan-out's bar: a segment per status, in this order, across the box under its caption.
BAR_ORDER: tuple[NodeStatus, ...] = (
    "succeeded",
    "failed",
    "cancelled",
    "skipped",
    "routed",
    "running",
    "approval",
    "waiting",
)
BAR_INSET = 10.0  # from each side of the box
BAR_HEIGHT = 4.0
ITEMS_SHOWN = 200  # a fan-out's items listed on a page; the rest are counted


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
class Segment:
    status: str
    x: float
    width: float


@dataclass(frozen=True)
class BoxView:
    box: Box
    status: NodeStatus
    caption: str  # the second line: status and time, or a group's counts
    title: str  # the tooltip: full name, condition
    href: str
    critical: bool
    segments: tuple[Segment, ...] = ()  # a fan-out's bar
    items: str = ""  # a fan-out's item count: "6", "4+" while more may come

    @property
    def label(self) -> str:
        text = self.box.label
        if self.segments and self.items:
            text = f"{text} ×{self.items}"
        return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 1] + "…"

    @property
    def bar_y(self) -> float:
        return self.box.y + NODE_HEIGHT - BAR_HEIGHT - 3


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
            agent = state.agents.get(box.key)
            href = f"/runs/{run_id}/agents/{quote(box.key, safe='')}"
            if agent is not None and agent.fan_out is not None:
                href = f"/runs/{run_id}?{urlencode({'open': box.key})}#items-{quote(box.key)}"
            title = _title(state, box.key, agent)
        fan_out = members[0].fan_out if len(members) == 1 and not box.is_group else None
        boxes.append(
            BoxView(
                box,
                status,
                caption,
                title,
                href,
                bool(on_path & set(box.members)),
                segments=bar_of(box, fan_out) if fan_out is not None else (),
                items=_item_count_shown(fan_out, state.run.status) if fan_out is not None else "",
            )
        )
    path_boxes = [drawing.box_of[name] for name in state.critical_path if name in drawing.box_of]
    critical = frozenset(itertools.pairwise(path_boxes))
    return GraphView(boxes, critical, drawing.width, drawing.height)


def _title(state: RunState, name: str, agent: AgentState | None) -> str:
    """A box's tooltip: the name, what it waits for, what decides it, and why it was routed away."""
    lines = [name]
    condition = state.blueprint.conditions.get(name, "")
    if condition:
        lines.append(f"depends on: {condition}")
    if name in state.blueprint.fan_outs:
        lines.append(f"for each: {state.blueprint.fan_outs[name]}")
    if name in state.blueprint.whens:
        lines.append(f"when: {state.blueprint.whens[name]}")
    if agent is not None and agent.fan_out is not None and agent.fan_out.total:
        lines.append(f"items: {describe_item_counts(agent.fan_out)}")
    if agent is not None and agent.status == "routed" and agent.outcome is not None:
        lines.append(f"{ROUTED_LABEL}: {agent.outcome.error or ''}")
    return "\n".join(lines)


def _item_count_shown(fan_out: FanOutState, run_status: str) -> str:
    """ "6"; "4+" while the run goes on and the count is not recorded yet; "" before any."""
    if not fan_out.total:
        return ""
    unsure = fan_out.item_count is None and run_status == "running"
    return f"{fan_out.total}{'+' if unsure else ''}"


def describe_item_counts(fan_out: FanOutState) -> str:
    """ "3 succeeded, 1 failed, 1 running of 5"."""
    counts = fan_out.counts()
    shown = ", ".join(f"{counts[s]} {s}" for s in BAR_ORDER if counts.get(s))
    return f"{shown} of {fan_out.total}" if shown else "none"


def bar_of(box: Box, fan_out: FanOutState) -> tuple[Segment, ...]:
    """One segment per status in ``BAR_ORDER`` (width 0 when none), left to right."""
    counts = fan_out.counts()
    total = sum(counts.values())
    span = NODE_WIDTH - 2 * BAR_INSET
    x = box.x + BAR_INSET
    segments = []
    for status in BAR_ORDER:
        width = span * counts.get(status, 0) / total if total else 0.0
        segments.append(Segment(status, round(x, 1), round(width, 1)))
        x += width
    return tuple(segments)


def box_status(box: Box, members: list[AgentState]) -> tuple[NodeStatus, str]:
    if not box.is_group:
        agent = members[0] if members else None
        if agent is None:
            return "waiting", "waiting"
        duration = agent.duration
        if agent.fan_out is not None and agent.fan_out.total:
            return agent.status, _items_caption(agent.fan_out)
        return agent.status, agent.status_label + (
            f" · {format_duration(duration)}" if duration is not None else ""
        )
    counts: dict[str, int] = {}
    for agent in members:
        counts[agent.status] = counts.get(agent.status, 0) + 1
    status: NodeStatus = next((s for s in _GROUP_PRECEDENCE if counts.get(s)), "waiting")
    caption = " ".join(f"{counts[s]} {s}" for s in _GROUP_PRECEDENCE if counts.get(s))
    return status, caption


def _items_caption(fan_out: FanOutState) -> str:
    """ "3/5 ✓ · 1 failed · 1 running": what fits under a fan-out's name (the tooltip says all)."""
    counts = fan_out.counts()
    parts = [f"{counts.get('succeeded', 0)}/{fan_out.total} ✓"]
    parts += [f"{counts[s]} {s}" for s in ("failed", "running") if counts.get(s)]
    return " · ".join(parts)


@dataclass(frozen=True)
class ItemsView:
    """A fan-out's items as ``_items.html`` lists them (an ``AgentView`` has the same fields)."""

    run: WorkflowRunRecord
    name: str
    fan_out: FanOutState
    items: list[ItemState]


def items_of(run: WorkflowRunRecord, agent: AgentState) -> ItemsView | None:
    if agent.fan_out is None:
        return None
    return ItemsView(run, agent.name, agent.fan_out, items_view(agent))


def items_view(agent: AgentState, limit: int = ITEMS_SHOWN) -> list[ItemState]:
    """The items a page lists: those that did not succeed first (they are why one looks),
    then the rest in item order, at most ``limit``."""
    if agent.fan_out is None:
        return []
    items = sorted(
        agent.fan_out.items.values(),
        key=lambda item: (item.status in ("succeeded", "running", "waiting"), item.index),
    )
    return items[:limit]


def live_snapshot(
    reader: HistoryReader, workflow_run_id: int, expanded: frozenset[str]
) -> dict[str, Any]:
    """Everything a live run page updates: the run's figures, each box and each agent row."""
    header = reader.workflow_run_header(workflow_run_id)
    outcomes = reader.agent_outcomes(workflow_run_id)
    starts = reader.agent_starts(workflow_run_id)
    blueprint = blueprint_of(header.definition, recorded_agents(outcomes, starts))
    state = combine(header.run, blueprint, outcomes, starts)
    drawing = draw(state.blueprint, expanded)
    boxes: dict[str, dict[str, Any]] = {}
    for view in graph_view(state, drawing, expanded).boxes:
        boxes[view.box.key] = {"status": view.status, "caption": view.caption}
        if view.segments:
            boxes[view.box.key]["label"] = view.label
            boxes[view.box.key]["segments"] = {s.status: [s.x, s.width] for s in view.segments}
    return {
        "run": run_figures(state),
        "boxes": boxes,
        "agents": {name: figures_of(agent) for name, agent in state.agents.items()},
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


def figures_of(agent: AgentState) -> dict[str, Any]:
    """One agent's row of the agents table, formatted: first rendered, then sent live."""
    figures = summary_of(agent)
    spent = agent.outcome is not None or (agent.fan_out is not None and agent.fan_out.outcomes())
    figures["cost"] = format_cost(figures["cost"]) if spent else ""
    figures["duration"] = format_duration(figures["duration"]) if agent.outcome else ""
    figures["label"] = status_cell(agent)
    if agent.fan_out is not None:
        figures["items_summary"] = describe_item_counts(agent.fan_out)
    return figures


def status_cell(agent: AgentState) -> str:
    """An agent's status as its row in the agents table reads: "routed away", a fan-out's
    "running · 3/5 ✓ · 1 failed"."""
    if agent.fan_out is not None and agent.fan_out.total:
        return f"{agent.status} · {_items_caption(agent.fan_out)}"
    return agent.status_label


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
    when: str | None = None  # its ``when``, as written
    decision: Decision | None = None  # ... as evaluated
    for_each: str | None = None  # a fan-out: its ``for_each``, its items and a page of them
    fan_out: FanOutState | None = None
    items: list[ItemState] = field(default_factory=list)
    iterations: list[AgentOutcome] = field(default_factory=list)  # a loop's member's
    agent: str | None = None  # an item: its fan-out agent, its index and the item as JSON
    item_index: int | None = None
    item_json: str | None = None

    @property
    def prompt(self) -> str | None:
        if self.record is not None:
            return self.record.prompt
        return self.start.prompt if self.start else None

    @property
    def status_label(self) -> str:
        return ROUTED_LABEL if self.status == "routed" else self.status


def agent_view(reader: HistoryReader, workflow_run_id: int, name: str) -> AgentView | None:
    header = reader.workflow_run_header(workflow_run_id)
    record = reader.agent_run_in(workflow_run_id, name)
    start = None if record is not None else reader.agent_start(workflow_run_id, name)
    agent, iteration, item_index = split_run_key(name)
    blueprint = blueprint_of(header.definition, (agent,) if record or start else ())
    if name not in blueprint.names and record is None and start is None:
        return None
    status: NodeStatus
    if record is not None:
        status = node_status(record.status or "", record.skip_cause)
    elif start is not None:
        status = "running" if header.run.status == "running" else "cancelled"
    else:
        status = "waiting"
    tool_run = record.reused_from_run_id or record.id if record is not None else None
    view = AgentView(
        run=header.run,
        name=name,
        status=status,
        model=(record.model if record else None)
        or (start.model if start else None)
        or blueprint.models.get(agent),
        provider=(record.provider if record else None) or (start.provider if start else None),
        condition=blueprint.conditions.get(agent, "") if item_index is None else "",
        record=record,
        start=start,
        output_json=pretty_json(record.output) if record is not None else None,
        tool_calls=reader.tool_calls(tool_run) if tool_run is not None else [],
        when=blueprint.whens.get(agent) if item_index is None else None,
        decision=record.decision if record is not None else None,
    )
    if iteration is None and item_index is None and record is not None and record.loop:
        state = run_state(reader, header).agents.get(agent)
        view.iterations = state.iterations if state is not None else []
    if item_index is not None:
        view.agent, view.item_index = agent, item_index
        item = record.item if record is not None else None  # canonical JSON text
        view.item_json = (pretty_json(item) or item) if item is not None else None
    elif agent in blueprint.fan_outs:
        view.for_each = blueprint.fan_outs[agent]
        state = run_state(reader, header).agents.get(agent)
        if state is not None and state.fan_out is not None:
            view.fan_out, view.items = state.fan_out, items_view(state)
    return view


def decision_values(decision: Decision) -> list[tuple[str, str]]:
    """(path, value as JSON) of what a decision read, for its table."""
    return [
        (path, json.dumps(value, ensure_ascii=False, default=str))
        for path, value in decision.values.items()
    ]


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


FILTERS: dict[str, Callable[..., object]] = {
    "cost": format_cost,
    "cap": format_cap,
    "duration": format_duration,
    "time": _time,
    "tokens": _tokens,
    "quote": lambda text: quote(str(text), safe=""),
    "decision_values": decision_values,
}
