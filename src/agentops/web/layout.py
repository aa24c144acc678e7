"""The run graph as drawn: which boxes there are (one per agent, or past a threshold
one per group of agents sharing a layer and a name prefix, which a click expands),
the edges between them, and where everything goes.

Positions come from grandalf's Sugiyama layout (layers, crossing reduction,
edge routing through dummy nodes); nothing here computes a coordinate beyond
placing the separately laid out connected components side by side.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import route_with_lines

from agentops.web.state import Blueprint

GROUP_ABOVE = 40  # agents; past this, agents of one layer sharing a name prefix are one box
MAX_BOXES = 120  # and past this many boxes after that, each layer is one box
NODE_WIDTH = 168.0
NODE_HEIGHT = 44.0
_COMPONENT_GAP = 48.0
_X_SPACE = 24.0  # between boxes of a layer
_Y_SPACE = 44.0  # between layers: room for the edges and their "or" labels
_MARGIN = 16.0
_PREFIX = re.compile(r"[A-Za-z]+|[^A-Za-z]+")


@dataclass(frozen=True)
class Box:
    key: str  # an agent's name, or "group:LAYER:PREFIX"
    label: str
    members: tuple[str, ...]  # the agents it stands for (one for an agent's box)
    x: float  # top-left corner
    y: float
    is_group: bool

    @property
    def center_x(self) -> float:
        return self.x + NODE_WIDTH / 2


@dataclass(frozen=True)
class Line:
    source: str  # box keys
    target: str
    points: tuple[tuple[float, float], ...]
    alternative: bool
    count: int  # dependencies it stands for

    @property
    def path(self) -> str:
        return "M " + " L ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)

    @property
    def middle(self) -> tuple[float, float]:
        (x1, y1), (x2, y2) = (
            self.points[len(self.points) // 2 - 1],
            self.points[len(self.points) // 2],
        )
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass(frozen=True)
class Drawing:
    boxes: tuple[Box, ...]
    lines: tuple[Line, ...]
    width: float
    height: float
    box_of: dict[str, str]  # agent name -> key of the box that shows it
    grouped: bool  # some agents are drawn as groups
    groups: tuple[str, ...]  # every group key there could be (for "expand all")


def prefix_of(name: str) -> str:
    """ "researcher_12" -> "researcher", "web-fetch" -> "web": the leading word of a name."""
    match = _PREFIX.match(name)
    return match.group(0) if match else name


@functools.lru_cache(maxsize=64)
def draw(blueprint: Blueprint, expanded: frozenset[str]) -> Drawing:
    """Lay out ``blueprint``'s graph; ``expanded`` group keys (or "all") are shown as agents."""
    groups = _grouping(blueprint)
    box_of: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for name in blueprint.names:
        key = groups.get(name, name)
        if key != name and ("all" in expanded or key in expanded):
            key = name
        box_of[name] = key
        members.setdefault(key, []).append(name)
    links: dict[tuple[str, str], list[bool]] = {}
    for name in blueprint.names:
        for dependency in blueprint.dependencies.get(name, ()):
            if dependency.upstream in box_of:
                pair = (box_of[dependency.upstream], box_of[name])
                if pair[0] != pair[1]:
                    links.setdefault(pair, []).append(dependency.alternative)
    vertices = {key: Vertex(key) for key in members}
    for vertex in vertices.values():
        vertex.view = _BoxView()
    edges = {pair: Edge(vertices[pair[0]], vertices[pair[1]]) for pair in links}
    for edge in edges.values():
        edge.view = _EdgeView()
    graph = Graph(list(vertices.values()), list(edges.values()))
    offset = 0.0
    positions: dict[str, tuple[float, float]] = {}
    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for component in graph.C:
        layout = SugiyamaLayout(component)
        layout.route_edge = route_with_lines
        layout.xspace, layout.yspace = _X_SPACE, _Y_SPACE
        layout.init_all()
        layout.draw(3)
        views = [v.view for v in component.sV]
        left = min(view.xy[0] for view in views) - NODE_WIDTH / 2
        top = min(view.xy[1] for view in views) - NODE_HEIGHT / 2
        shift_x, shift_y = offset - left + _MARGIN, _MARGIN - top
        for vertex in component.sV:
            x, y = vertex.view.xy
            positions[vertex.data] = (x + shift_x - NODE_WIDTH / 2, y + shift_y - NODE_HEIGHT / 2)
        for edge in component.sE:
            points = getattr(edge.view, "points", None) or [edge.v[0].view.xy, edge.v[1].view.xy]
            routes[(edge.v[0].data, edge.v[1].data)] = [
                (x + shift_x, y + shift_y) for x, y in points
            ]
        offset = max(x + NODE_WIDTH for x, _ in positions.values()) - _MARGIN + _COMPONENT_GAP
    boxes = tuple(
        Box(
            key=key,
            label=_group_label(names) if len(names) > 1 or key != names[0] else key,
            members=tuple(names),
            x=positions[key][0],
            y=positions[key][1],
            is_group=key != names[0] or len(names) > 1,
        )
        for key, names in members.items()
    )
    lines = tuple(
        Line(source, target, tuple(routes[(source, target)]), all(alternatives), len(alternatives))
        for (source, target), alternatives in links.items()
    )
    width = max((box.x + NODE_WIDTH for box in boxes), default=0.0) + _MARGIN
    height = max((box.y + NODE_HEIGHT for box in boxes), default=0.0) + _MARGIN
    return Drawing(
        boxes=boxes,
        lines=lines,
        width=width,
        height=height,
        box_of=box_of,
        grouped=any(box.is_group for box in boxes),
        groups=tuple(sorted(set(groups.values()))),
    )


def _grouping(blueprint: Blueprint) -> dict[str, str]:
    """Agent -> group key, for agents that share a group with at least one other."""
    if len(blueprint.names) <= GROUP_ABOVE:
        return {}
    by_prefix = {
        name: f"group:{blueprint.layers.get(name, 0)}:{prefix_of(name)}" for name in blueprint.names
    }
    if len(set(by_prefix.values())) > MAX_BOXES:
        by_prefix = {name: f"group:{blueprint.layers.get(name, 0)}:*" for name in blueprint.names}
    sizes: dict[str, int] = {}
    for key in by_prefix.values():
        sizes[key] = sizes.get(key, 0) + 1
    return {name: key for name, key in by_prefix.items() if sizes[key] > 1}


def _group_label(names: list[str]) -> str:
    prefix = prefix_of(names[0])
    shared = all(prefix_of(name) == prefix for name in names)
    return f"{prefix if shared else 'layer'} ×{len(names)}"


class _BoxView:
    """What grandalf needs of a vertex's drawing: its size, and where it puts it."""

    w = NODE_WIDTH
    h = NODE_HEIGHT
    xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    points: list[tuple[float, float]] | None = None

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]
