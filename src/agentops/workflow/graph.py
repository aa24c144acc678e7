"""Dependency conditions (AND / OR), the workflow's dependency graph, and its
rendering as Mermaid or Graphviz DOT.

A condition names upstream agents. An agent waits until every agent its
condition names has settled, then runs if the condition holds over the ones
that succeeded; otherwise it is skipped. ``parse_condition`` accepts every form
a user may write under ``depends_on`` (see ``spec.DependsOn``). A fan-out agent
(``for_each``) also needs the agent its list comes from: ``agent_condition``
adds it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from agentops.workflow.expressions import ExpressionError, parse_expression
from agentops.workflow.spec import Agent, DependsOn, Workflow


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


Condition = Union[Ref, AllOf, AnyOf]


class ConditionSyntaxError(ValueError):
    """A ``depends_on`` value that is not a valid condition; the message says why."""


def parse_condition(raw: DependsOn) -> Condition | None:
    """Turn a ``depends_on`` value into a condition (None: no dependencies)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return _parse_text(raw) if _looks_like_expression(raw) else Ref(raw.strip())
    if isinstance(raw, list):
        if not raw:
            return None
        return _flatten(AllOf(tuple(_parse_item(item) for item in raw)))
    if isinstance(raw, dict):
        return _parse_item(raw)
    raise ConditionSyntaxError(
        f"depends_on must be a name, a list of names, {{all: [...]}} or {{any: [...]}}, not {type(raw).__name__}"
    )


def _parse_item(item: Any) -> Condition:
    if isinstance(item, str):
        parsed = parse_condition(item)
        if parsed is None:  # pragma: no cover - a non-empty string always parses to something
            raise ConditionSyntaxError("empty dependency name")
        return parsed
    if isinstance(item, dict):
        if len(item) != 1 or next(iter(item)) not in ("all", "any"):
            keys = ", ".join(map(str, item)) or "nothing"
            raise ConditionSyntaxError(
                f"a dependency mapping takes exactly one key, 'all' or 'any' (found {keys})"
            )
        key, value = next(iter(item.items()))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ConditionSyntaxError(f"'{key}:' takes a non-empty list of dependencies")
        items = tuple(_parse_item(v) for v in value)
        return _flatten(AllOf(items) if key == "all" else AnyOf(items))
    raise ConditionSyntaxError(
        f"a dependency must be a name or a mapping, not {type(item).__name__}"
    )


def _flatten(condition: Condition) -> Condition:
    if isinstance(condition, (AllOf, AnyOf)) and len(condition.items) == 1:
        return condition.items[0]
    return condition


# --- the string form: "a && (b || c)" ---------------------------------------------

_TOKEN = re.compile(r"\s*(?:(&&|\|\||\(|\))|([A-Za-z_][\w\-]*))")


def _looks_like_expression(text: str) -> bool:
    return any(op in text for op in ("&&", "||", "(", ")"))


MAX_EXPRESSION_DEPTH = 32  # the parser recurses once per parenthesis


def _parse_text(text: str) -> Condition:
    depth = deepest = 0
    for character in text:
        depth += (character == "(") - (character == ")")
        deepest = max(deepest, depth)
    if deepest > MAX_EXPRESSION_DEPTH:
        raise ConditionSyntaxError(
            f"dependency expression nests parentheses deeper than {MAX_EXPRESSION_DEPTH} levels; simplify it"
        )
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match:
            raise ConditionSyntaxError(
                f"cannot parse dependency expression {text!r} at column {position + 1}: "
                "use names joined by && and ||, with parentheses"
            )
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    parser = _ExpressionParser(tokens, text)
    condition = parser.parse_or()
    if parser.position != len(tokens):
        raise ConditionSyntaxError(
            f"unexpected {tokens[parser.position]!r} in dependency expression {text!r}"
        )
    return condition


class _ExpressionParser:
    """Recursive descent: or := and ('||' and)*; and := atom ('&&' atom)*; atom := name | '(' or ')'."""

    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def parse_or(self) -> Condition:
        items = [self.parse_and()]
        while self._peek() == "||":
            self.position += 1
            items.append(self.parse_and())
        return _flatten(AnyOf(tuple(items)))

    def parse_and(self) -> Condition:
        items = [self.parse_atom()]
        while self._peek() == "&&":
            self.position += 1
            items.append(self.parse_atom())
        return _flatten(AllOf(tuple(items)))

    def parse_atom(self) -> Condition:
        token = self._peek()
        if token is None:
            raise ConditionSyntaxError(f"dependency expression {self.text!r} ends too early")
        self.position += 1
        if token == "(":
            inner = self.parse_or()
            if self._peek() != ")":
                raise ConditionSyntaxError(f"missing ')' in dependency expression {self.text!r}")
            self.position += 1
            return inner
        if token in ("&&", "||", ")"):
            raise ConditionSyntaxError(
                f"unexpected {token!r} in dependency expression {self.text!r}"
            )
        return Ref(token)


# --- fan-out: the implied dependency ------------------------------------------------


def for_each_sources(for_each: str | None) -> tuple[str, ...]:
    """The agents a ``for_each`` expression reads, in the order written (none when it does not
    parse: the load-time checks report that)."""
    if for_each is None:
        return ()
    try:
        paths = parse_expression(for_each).paths()
    except ExpressionError:
        return ()
    return tuple(dict.fromkeys(path.name for path in paths if path.kind == "agent"))


def with_sources(condition: Condition | None, sources: Iterable[str]) -> Condition | None:
    """``condition`` that also requires each of ``sources``: a fan-out cannot start without its
    list. A source it already requires is not added again; one it names only as an alternative
    (under ``any``) becomes required too."""
    edges = dependency_edges(condition)
    missing = tuple(Ref(name) for name in sources if edges.get(name, True))
    if not missing:
        return condition
    if condition is None:
        return _flatten(AllOf(missing))
    if isinstance(condition, AllOf):
        return AllOf((*condition.items, *missing))
    return AllOf((condition, *missing))


def agent_condition(agent: Agent) -> Condition | None:
    """What ``agent`` waits for: its ``depends_on``, and its ``for_each``'s agent."""
    return with_sources(parse_condition(agent.depends_on), for_each_sources(agent.for_each))


# --- evaluation -----------------------------------------------------------------


def condition_names(condition: Condition | None) -> frozenset[str]:
    if condition is None:
        return frozenset()
    if isinstance(condition, Ref):
        return frozenset((condition.name,))
    return frozenset().union(*(condition_names(item) for item in condition.items))


def condition_holds(condition: Condition | None, succeeded: Iterable[str]) -> bool:
    done = succeeded if isinstance(succeeded, (set, frozenset)) else set(succeeded)
    return _holds(condition, done)


def _holds(condition: Condition | None, succeeded: set[str] | frozenset[str]) -> bool:
    if condition is None:
        return True
    if isinstance(condition, Ref):
        return condition.name in succeeded
    if isinstance(condition, AllOf):
        return all(_holds(item, succeeded) for item in condition.items)
    return any(_holds(item, succeeded) for item in condition.items)


def describe_condition(condition: Condition | None) -> str:
    """The condition as an expression: ``a && (b || c)``."""
    if condition is None:
        return ""
    if isinstance(condition, Ref):
        return condition.name
    joiner = " && " if isinstance(condition, AllOf) else " || "
    parts = []
    for item in condition.items:
        text = describe_condition(item)
        parts.append(f"({text})" if isinstance(item, (AllOf, AnyOf)) else text)
    return joiner.join(parts)


def unmet_reason(condition: Condition | None, statuses: Mapping[str, str]) -> str:
    """Why a settled condition does not hold, e.g. ``researcher failed``."""
    names = sorted(condition_names(condition))
    not_ok = [
        f"{name} {statuses.get(name, 'did not run')}"
        for name in names
        if statuses.get(name) != "succeeded"
    ]
    return ", ".join(not_ok) or "dependencies not met"


# --- the graph ---------------------------------------------------------------------


class WorkflowGraph:
    """The dependency graph of a validated workflow (every name known, no cycle)."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.conditions: dict[str, Condition | None] = {
            agent.name: agent_condition(agent) for agent in workflow.agents
        }
        self.dependencies: dict[str, frozenset[str]] = {
            name: condition_names(condition) for name, condition in self.conditions.items()
        }
        self.dependents: dict[str, list[str]] = {name: [] for name in self.conditions}
        for name, deps in self.dependencies.items():
            for dep in sorted(deps):
                if dep in self.dependents:
                    self.dependents[dep].append(name)

    @property
    def names(self) -> list[str]:
        return list(self.conditions)

    def sinks(self) -> list[str]:
        """Agents nothing depends on: their outputs are the workflow's results."""
        return [name for name, users in self.dependents.items() if not users]

    def downstream(self, name: str) -> set[str]:
        """``name`` and every agent that depends on it, directly or not."""
        found = {name}
        waiting = deque([name])
        while waiting:
            for user in self.dependents.get(waiting.popleft(), ()):
                if user not in found:
                    found.add(user)
                    waiting.append(user)
        return found

    def find_cycle(self) -> list[str] | None:
        """A dependency cycle as a path ``[a, b, c, a]``, or None."""
        return find_cycle(self.dependencies)

    def topological_order(self) -> list[str]:
        """Agents in an order where each comes after everything it names (file order on ties)."""
        remaining = {name: len(deps) for name, deps in self.dependencies.items()}
        ready = deque(name for name, count in remaining.items() if count == 0)
        order: list[str] = []
        while ready:
            name = ready.popleft()
            order.append(name)
            for user in self.dependents[name]:
                remaining[user] -= 1
                if remaining[user] == 0:
                    ready.append(user)
        return order

    def levels(self) -> dict[str, int]:
        """Depth of each agent: 0 for roots, else 1 + the deepest dependency."""
        depth: dict[str, int] = {}
        for name in self.topological_order():
            deps = self.dependencies[name]
            depth[name] = 1 + max(depth[d] for d in deps) if deps else 0
        return depth

    def critical_path(self, weights: Mapping[str, float]) -> tuple[list[str], float]:
        """The heaviest chain of dependencies, with each agent weighing ``weights[name]``."""
        best: dict[str, tuple[float, str | None]] = {}
        for name in self.topological_order():
            previous = max(((best[d][0], d) for d in self.dependencies[name]), default=(0.0, None))
            best[name] = (previous[0] + weights.get(name, 0.0), previous[1])
        if not best:
            return [], 0.0
        end = max(best, key=lambda n: best[n][0])
        total = best[end][0]
        path: list[str] = []
        cursor: str | None = end
        while cursor is not None:
            path.append(cursor)
            cursor = best[cursor][1]
        return list(reversed(path)), total


def find_cycle(dependencies: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle in ``{agent: names it depends on}`` as a path ``[a, b, c, a]``, or None.

    Each agent in the path depends on the next. Names that are not keys are
    ignored. Iterative, so a long chain of agents cannot exhaust the stack.
    """
    edges = {
        name: sorted(dep for dep in deps if dep in dependencies)
        for name, deps in dependencies.items()
    }
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    for root in edges:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        pending = [iter(edges[root])]
        while pending:
            for dep in pending[-1]:
                if state.get(dep) == 1:
                    return [*path[path.index(dep) :], dep]
                if dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    pending.append(iter(edges[dep]))
                    break
            else:
                state[path.pop()] = 2
                pending.pop()
    return None


# --- rendering: Mermaid and Graphviz DOT ---------------------------------------------


def dependency_edges(condition: Condition | None) -> dict[str, bool]:
    """Each name a condition depends on, with True when it is one of alternatives (under ``any``).

    A name that is required somewhere (outside every ``any``) counts as required.
    """
    edges: dict[str, bool] = {}

    def walk(item: Condition, alternative: bool) -> None:
        if isinstance(item, Ref):
            edges[item.name] = edges.get(item.name, True) and alternative
            return
        for child in item.items:
            walk(child, alternative or isinstance(item, AnyOf))

    if condition is not None:
        walk(condition, False)
    return edges


def _edges_in_file_order(graph: WorkflowGraph) -> list[tuple[str, str, bool]]:
    order = {name: index for index, name in enumerate(graph.names)}
    found = []
    for name, condition in graph.conditions.items():
        edges = dependency_edges(condition)
        for dep in sorted(edges, key=lambda dep: order.get(dep, len(order))):
            found.append((dep, name, edges[dep]))
    return found


_MERMAID_KEYWORDS = {
    "end",
    "graph",
    "flowchart",
    "subgraph",
    "style",
    "class",
    "classdef",
    "click",
    "linkstyle",
    "default",
    "direction",
    "call",
    "href",
}


def _mermaid_ids(names: list[str]) -> dict[str, str]:
    """Readable node ids where Mermaid allows them, ``n<i>`` otherwise ('-' and keywords break it)."""
    ids: dict[str, str] = {}
    for index, name in enumerate(names):
        safe = (
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _MERMAID_KEYWORDS
        )
        ids[name] = name if safe else f"n{index}"
    if len(set(ids.values())) != len(ids):  # a name like "n3" collided with a generated id
        ids = {name: f"n{index}" for index, name in enumerate(names)}
    return ids


def _mermaid_text(text: str) -> str:
    text = " ".join(text.split())  # a label is one line
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _node_lines(agent: Agent) -> list[str]:
    """A node's label: the name (``writer ×N`` for a fan-out), the model, then what decides
    whether and how often it runs."""
    lines = [f"{agent.name} ×N" if agent.for_each else agent.name, agent.model]
    if agent.for_each:
        lines.append(f"for each {' '.join(agent.for_each.split())}")
    if agent.when:
        lines.append(f"when {' '.join(agent.when.split())}")
    return lines


def to_mermaid(graph: WorkflowGraph) -> str:
    """The DAG as a Mermaid flowchart; edges point from a dependency to its user.

    Alternatives (``any:`` / ``||``) are dashed arrows labelled "or". A fan-out is a
    double-bordered box (``writer ×N``); ``for_each`` and ``when`` are lines of the label.
    """
    ids = _mermaid_ids(graph.names)
    lines = ["flowchart TD", f"    %% workflow: {' '.join(graph.workflow.name.split())}"]
    for agent in graph.workflow.agents:
        label = "<br/>".join(_mermaid_text(line) for line in _node_lines(agent))
        opening, closing = ("[[", "]]") if agent.for_each else ("[", "]")
        lines.append(f'    {ids[agent.name]}{opening}"{label}"{closing}')
    for dep, user, alternative in _edges_in_file_order(graph):
        if dep in ids:
            arrow = "-. or .->" if alternative else "-->"
            lines.append(f"    {ids[dep]} {arrow} {ids[user]}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: WorkflowGraph) -> str:
    """The DAG in Graphviz DOT; alternatives (``any:`` / ``||``) are dashed edges labelled "or",
    a fan-out has a double border, and ``for_each`` / ``when`` are lines of the label."""
    lines = [
        f"digraph {_dot_text(graph.workflow.name)} {{",
        "    rankdir=TB;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
    ]
    for agent in graph.workflow.agents:
        label = _dot_text("\n".join(_node_lines(agent)))
        extra = ", peripheries=2" if agent.for_each else ""
        lines.append(f"    {_dot_text(agent.name)} [label={label}{extra}];")
    for dep, user, alternative in _edges_in_file_order(graph):
        if dep in graph.conditions:
            style = ' [style=dashed, label="or"]' if alternative else ""
            lines.append(f"    {_dot_text(dep)} -> {_dot_text(user)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
