"""Checks that need the whole workflow, beyond what each field's type says.

Duplicate and reserved agent names, unparseable or unknown dependencies,
cycles, template placeholders (``{{ agent.output }}`` only for the agent's own
dependencies, ``{{ agent.output.field }}`` only for a field its output schema
has, ``{{ inputs.name }}`` only for declared inputs, ``{{ item }}`` only in a
fan-out), ``for_each`` and ``when`` expressions (their syntax, the agents,
inputs and fields they read, a list to fan out over, literals a field can
hold), keys that go only with ``for_each``, loops (members named once, known and in one
loop; no agent both before and after a loop; ``until`` reading this iteration's
members; ``NAME.previous.output`` only inside a loop, of its own members), output
schemas that are
not valid JSON Schemas or whose ``$ref``s leave the schema or loop, unknown
providers, contradictory inputs, and tools: each one Python or MCP (stdio or
HTTP), and every agent's picks naming a tool or server that exists. What needs
the tools themselves (imports, an MCP server's list) is ``tools.catalog``.

They run on ``WorkflowFacts``: built from a validated ``Workflow`` (for
workflows made in Python) or, best effort, from the raw YAML data (so that a
file with a type error elsewhere still gets every other problem reported at
once). Each problem carries the path of the value it is about and, for text,
the character offset, so the loader can point at the exact line and column.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from agentops.workflow.expressions import (
    ITEM_NAMES,
    CompareNode,
    Expression,
    ExpressionError,
    ListNode,
    LiteralNode,
    Node,
    PathNode,
    children,
    equal,
    parse_expression,
    show,
    walk,
)
from agentops.workflow.graph import (
    Condition,
    ConditionSyntaxError,
    Ref,
    condition_names,
    find_cycle,
    for_each_sources,
    parse_condition,
    with_sources,
)
from agentops.workflow.provider_kinds import BUILTIN_PROVIDERS
from agentops.workflow.schemas import (
    field_problem,
    field_schema,
    json_type,
    reference_problem,
    schema_problem,
    schema_types,
    schema_values,
)
from agentops.workflow.spec import InputSpec, Workflow
from agentops.workflow.suggest import closest, did_you_mean
from agentops.workflow.templates import PLACEHOLDER, references

PathKey = tuple[str | int, ...]

RESERVED_AGENT_NAMES = frozenset({"inputs", *ITEM_NAMES})
_INPUT_NAME = re.compile(r"^[A-Za-z_]\w*$")
_MAX_CYCLES_REPORTED = 10


@dataclass(frozen=True)
class Problem:
    path: PathKey
    message: str
    offset: int | None = None  # into the string at ``path``
    at_key: bool = False  # point at the key rather than its value


@dataclass(frozen=True)
class AgentFacts:
    index: int
    name: str | None
    depends_on: Any
    task: str | None
    system: str | None
    provider: str | None
    tools: Any = None  # as written: a list of names, when it is one
    output: Any = (
        None  # as written: the output: mapping (its schema read from a file already), or None
    )
    for_each: Any = None  # as written; None when absent
    when: Any = None
    max_items: Any = None  # as written; None when absent
    on_item_error: Any = None  # as written; None when absent (not the default)
    approval: Any = None  # as written; None when absent

    @property
    def label(self) -> str:
        return f"agent '{self.name}'" if self.name else f"agent #{self.index + 1}"

    @property
    def has_schema(self) -> bool:
        return isinstance(self.output, Mapping) and "schema" in self.output

    @property
    def schema(self) -> Any:
        """The output schema when it can be checked (a mapping or true/false), else None."""
        schema = self.output.get("schema") if isinstance(self.output, Mapping) else None
        return schema if isinstance(schema, (Mapping, bool)) else None


@dataclass(frozen=True)
class InputFacts:
    default: Any
    required: bool | None


@dataclass(frozen=True)
class ToolFacts:
    """One entry under ``tools:``, as written (keys present, values of any type)."""

    name: str
    fields: Mapping[str, Any]
    mcp: Mapping[str, Any] | None  # the mcp: mapping, when it is one

    @property
    def is_mcp(self) -> bool:
        return "mcp" in self.fields and "python" not in self.fields


@dataclass(frozen=True)
class LoopFacts:
    """One entry under ``loops:``, as written."""

    index: int
    name: str | None
    agents: Any  # as written: a list of names, when it is one
    until: Any = None

    @property
    def label(self) -> str:
        return f"loop '{self.name}'" if self.name else f"loop #{self.index + 1}"

    @property
    def members(self) -> list[str]:
        """The names it lists that are text (the others are type errors reported elsewhere)."""
        return (
            [a for a in self.agents if isinstance(a, str)] if isinstance(self.agents, list) else []
        )


@dataclass(frozen=True)
class WorkflowFacts:
    agents: tuple[AgentFacts, ...]
    inputs: Mapping[str, InputFacts] | None  # None: unknown (the inputs section is malformed)
    providers: frozenset[str] = field(default_factory=frozenset)
    tools: Mapping[str, ToolFacts] | None = None  # None: unknown (the tools section is malformed)
    loops: tuple[LoopFacts, ...] = ()

    @classmethod
    def from_workflow(cls, workflow: Workflow) -> WorkflowFacts:
        agents = tuple(
            AgentFacts(
                i,
                a.name,
                a.depends_on,
                a.task,
                a.system,
                a.provider,
                list(a.tools),
                None if a.output is None else {"schema": a.output.json_schema},
                a.for_each,
                a.when,
                a.max_items,
                a.on_item_error if "on_item_error" in a.model_fields_set else None,
                a.approval,
            )
            for i, a in enumerate(workflow.agents)
        )
        inputs = {
            name: InputFacts(spec.default, spec.required)
            if isinstance(spec, InputSpec)
            else InputFacts(spec, None)
            for name, spec in workflow.inputs.items()
        }
        tools = {
            name: ToolFacts(
                name,
                {key: getattr(spec, key) for key in spec.model_fields_set},
                spec.mcp.model_dump(exclude_unset=True) if spec.mcp is not None else None,
            )
            for name, spec in workflow.tools.items()
        }
        loops = tuple(
            LoopFacts(i, loop.name, list(loop.agents), loop.until)
            for i, loop in enumerate(workflow.loops)
        )
        return cls(agents, inputs, frozenset(workflow.providers), tools, loops)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> WorkflowFacts:
        """Whatever can be trusted in raw data; anything of the wrong type is left out."""
        raw_agents = data.get("agents")
        agents = tuple(
            AgentFacts(
                i,
                _text(item.get("name")),
                item.get("depends_on"),
                _text(item.get("task")),
                _text(item.get("system")),
                _text(item.get("provider")),
                item.get("tools"),
                item.get("output"),
                item.get("for_each"),
                item.get("when"),
                item.get("max_items"),
                item.get("on_item_error"),
                item.get("approval"),
            )
            for i, item in enumerate(raw_agents if isinstance(raw_agents, list) else [])
            if isinstance(item, dict)
        )
        raw_inputs = data.get("inputs", {})
        inputs: dict[str, InputFacts] | None = None
        if isinstance(raw_inputs, dict):
            inputs = {
                str(name): InputFacts(spec.get("default"), spec.get("required"))
                if isinstance(spec, dict)
                else InputFacts(spec, None)
                for name, spec in raw_inputs.items()
            }
        raw_providers = data.get("providers")
        providers = (
            frozenset(map(str, raw_providers)) if isinstance(raw_providers, dict) else frozenset()
        )
        raw_tools = data.get("tools", {})
        tools: dict[str, ToolFacts] | None = None
        if isinstance(raw_tools, dict):
            tools = {
                str(name): ToolFacts(
                    str(name),
                    spec if isinstance(spec, dict) else {},
                    spec.get("mcp")
                    if isinstance(spec, dict) and isinstance(spec.get("mcp"), dict)
                    else None,
                )
                for name, spec in raw_tools.items()
            }
        raw_loops = data.get("loops")
        loops = tuple(
            LoopFacts(i, _text(item.get("name")), item.get("agents"), item.get("until"))
            for i, item in enumerate(raw_loops if isinstance(raw_loops, list) else [])
            if isinstance(item, dict)
        )
        return cls(agents, inputs, providers, tools, loops)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def find_problems(facts: WorkflowFacts) -> list[Problem]:
    """Every cross-field problem in the workflow."""
    problems: list[Problem] = []
    problems += _name_problems(facts)
    conditions, condition_problems = _parse_conditions(facts)
    problems += condition_problems
    problems += _unknown_dependencies(facts, conditions)
    waits_for = _with_fan_out_sources(facts, conditions)
    problems += _cycles(facts, conditions, waits_for)
    problems += _template_problems(facts, waits_for)
    problems += _fan_out_key_problems(facts)
    problems += _expression_problems(facts, waits_for)
    problems += _loop_problems(facts, waits_for)
    problems += _previous_problems(facts)
    problems += _provider_problems(facts)
    problems += _input_problems(facts)
    problems += _tool_problems(facts)
    problems += _agent_tool_problems(facts)
    problems += _schema_problems(facts)
    return problems


# --- names -----------------------------------------------------------------------


def _name_problems(facts: WorkflowFacts) -> list[Problem]:
    problems = []
    first: dict[str, int] = {}
    for agent in facts.agents:
        if agent.name is None:
            continue
        path: PathKey = ("agents", agent.index, "name")
        if agent.name in RESERVED_AGENT_NAMES:
            use = (
                "{{ inputs.NAME }} placeholders"
                if agent.name == "inputs"
                else f"{{{{ {agent.name} }}}} in a fan-out"
            )
            problems.append(
                Problem(path, f"agent name '{agent.name}' is reserved for {use}; rename the agent")
            )
        if agent.name in first:
            problems.append(
                Problem(
                    path,
                    f"duplicate agent name '{agent.name}' (also agent #{first[agent.name] + 1}); "
                    "give each agent a unique name",
                )
            )
        else:
            first[agent.name] = agent.index
    return problems


# --- dependencies --------------------------------------------------------------------


def _parse_conditions(facts: WorkflowFacts) -> tuple[dict[int, Condition | None], list[Problem]]:
    """Parsed conditions by agent index; agents whose condition does not parse are left out."""
    conditions: dict[int, Condition | None] = {}
    problems = []
    for agent in facts.agents:
        path: PathKey = ("agents", agent.index, "depends_on")
        try:
            conditions[agent.index] = parse_condition(agent.depends_on)
        except ConditionSyntaxError as error:
            problems.append(Problem(path, f"{agent.label}: {error}"))
    return conditions, problems


def _with_fan_out_sources(
    facts: WorkflowFacts, conditions: Mapping[int, Condition | None]
) -> dict[int, Condition | None]:
    """What each agent waits for: its depends_on, and the agent its for_each reads
    (``graph.agent_condition`` for a validated workflow)."""
    return {
        agent.index: with_sources(conditions[agent.index], for_each_sources(_text(agent.for_each)))
        for agent in facts.agents
        if agent.index in conditions
    }


def _unknown_dependencies(
    facts: WorkflowFacts, conditions: Mapping[int, Condition | None]
) -> list[Problem]:
    known = _agent_names(facts)
    problems = []
    for agent in facts.agents:
        for ref in _refs(conditions.get(agent.index)):
            name = ref.name
            if name in known:
                continue
            where, offset = locate_dependency(agent.depends_on, name)
            path: PathKey = ("agents", agent.index, "depends_on", *where)
            if not name:
                message = (
                    f"{agent.label}: depends_on has an empty name; write an agent name or remove it"
                )
            elif re.search(r"[&|!]", name):
                message = (
                    f"{agent.label}: cannot read depends_on {name!r}: join names with && (all of) "
                    "or || (any of), grouped with parentheses"
                )
            elif re.search(r"[\s,;]", name):
                parts = [part for part in re.split(r"[\s,;]+", name) if part]
                message = (
                    f"{agent.label} depends on unknown agent '{name}'; for several dependencies "
                    f'write a list [{", ".join(parts)}] or an expression "{" && ".join(parts)}"'
                )
            else:
                others = [other for other in known if other != agent.name]
                hint = did_you_mean(name, others) or (
                    f"; known agents: {', '.join(others)}" if 0 < len(others) <= 10 else ""
                )
                message = f"{agent.label} depends on unknown agent '{name}'{hint}"
            problems.append(Problem(path, message, offset))
    return problems


def _agent_names(facts: WorkflowFacts) -> dict[str, None]:
    """Agent names in file order, as a dict for fast membership tests."""
    return dict.fromkeys(agent.name for agent in facts.agents if agent.name)


def _refs(condition: Condition | None) -> list[Ref]:
    if condition is None:
        return []
    if isinstance(condition, Ref):
        return [condition]
    return [ref for item in condition.items for ref in _refs(item)]


def locate_dependency(raw: Any, name: str) -> tuple[PathKey, int | None]:
    """Where ``name`` is written inside a ``depends_on`` value: sub-path and offset in that string."""
    if isinstance(raw, str):
        if raw.strip() == name:
            return (), len(raw) - len(raw.lstrip())
        match = re.search(rf"(?<![\w\-]){re.escape(name)}(?![\w\-])", raw) if name else None
        return (), match.start() if match else None
    items: list[tuple[str | int, Any]] = []
    if isinstance(raw, list):
        items = list(enumerate(raw))
    elif isinstance(raw, dict):
        items = [(key, value) for key, value in raw.items() if isinstance(key, str)]
    for key, value in items:
        if _mentions(value, name):
            sub, offset = locate_dependency(value, name)
            return (key, *sub), offset
    return (), None


def _mentions(raw: Any, name: str) -> bool:
    if isinstance(raw, str):
        return raw.strip() == name or bool(
            name and re.search(rf"(?<![\w\-]){re.escape(name)}(?![\w\-])", raw)
        )
    if isinstance(raw, list):
        return any(_mentions(item, name) for item in raw)
    if isinstance(raw, dict):
        return any(_mentions(value, name) for value in raw.values())
    return False


def _cycles(
    facts: WorkflowFacts,
    conditions: Mapping[int, Condition | None],
    waits_for: Mapping[int, Condition | None],
) -> list[Problem]:
    """Cycles through depends_on and the dependencies for_each implies; each reported where the
    first agent names the next (its depends_on, or its for_each)."""
    names = {agent.name for agent in facts.agents if agent.name}
    dependencies: dict[str, set[str]] = {}
    by_name: dict[str, AgentFacts] = {}
    for agent in facts.agents:
        if agent.name and agent.index in waits_for:
            dependencies.setdefault(agent.name, set()).update(
                condition_names(waits_for[agent.index]) & names
            )
            by_name.setdefault(agent.name, agent)
    problems = []
    for _ in range(_MAX_CYCLES_REPORTED):
        cycle = find_cycle(dependencies)
        if cycle is None:
            break
        first, second = cycle[0], cycle[1]
        dependencies[first].discard(second)  # look for further, different cycles
        agent = by_name[first]
        if second in condition_names(conditions.get(agent.index)):
            where, offset = locate_dependency(agent.depends_on, second)
            path: PathKey = ("agents", agent.index, "depends_on", *where)
        else:  # the dependency for_each implies
            path, offset = ("agents", agent.index, "for_each"), _path_offset(agent.for_each, second)
        implied = [
            (user, source)
            for user, source in pairwise(cycle)
            if source not in condition_names(conditions.get(by_name[user].index))
        ]
        if len(cycle) == 2 and implied:
            message = (
                f"agent '{first}': for_each reads its own output; a fan-out's list comes from "
                "an upstream agent"
            )
        elif len(cycle) == 2:
            message = f"agent '{first}' depends on itself; remove '{first}' from its depends_on"
        else:
            note = "; for_each depends on the agent of its list" if implied else ""
            message = (
                f"dependency cycle {' → '.join(cycle)} (each agent depends on the next{note}); "
                "remove one of these dependencies"
            )
        problems.append(Problem(path, message, offset))
    return problems


def _path_offset(text: Any, agent: str) -> int | None:
    """Where an expression first reads ``agent``'s output."""
    try:
        paths = parse_expression(text).paths() if isinstance(text, str) else ()
    except ExpressionError:
        return None
    return next((path.offset for path in paths if path.name == agent), None)


# --- templates -----------------------------------------------------------------------

_JINJA_TAG = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_DOLLAR = re.compile(r"\$\{\s*([A-Za-z_][\w\-]*)\.([A-Za-z_]\w*)\s*\}")
_SINGLE_BRACES = re.compile(r"(?<!\{)\{\s*([A-Za-z_][\w\-]*)\s*\}(?!\})")
_TEMPLATE_FORMS = "{{ AGENT.output }}, {{ AGENT.output.FIELD }} or {{ inputs.NAME }}"


def _snippet(text: str, limit: int = 60) -> str:
    """Template text as shown in a one-line message: whitespace collapsed, long text cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _template_problems(
    facts: WorkflowFacts, conditions: Mapping[int, Condition | None]
) -> list[Problem]:
    problems = []
    known = _agent_names(facts)
    by_name = {agent.name: agent for agent in facts.agents if agent.name}
    for agent in facts.agents:
        upstream = condition_names(conditions[agent.index]) if agent.index in conditions else None
        for field_name in ("task", "system"):
            text = getattr(agent, field_name)
            if text:
                path: PathKey = ("agents", agent.index, field_name)
                for offset, message in _text_problems(text, facts, known, upstream):
                    problems.append(Problem(path, f"{agent.label}: {field_name} {message}", offset))
                for offset, message in [
                    *_field_problems(text, by_name),
                    *_item_problems(text, agent, by_name),
                ]:
                    problems.append(Problem(path, f"{agent.label}: {field_name} {message}", offset))
    return problems


def _field_problems(text: str, agents: Mapping[str, AgentFacts]) -> list[tuple[int, str]]:
    """``{{ NAME.output.FIELD }}``: NAME's output has FIELD (its schema, or a fan-out's list)."""
    found: list[tuple[int, str]] = []
    for ref in references(text):
        if ref.kind != "agent" or not ref.fields or ref.name not in agents:
            continue
        upstream = agents[ref.name]
        seen = output_schema(upstream)
        if seen is None:
            found.append(
                (
                    ref.offset,
                    (
                        f"uses {ref.text}, but '{ref.name}' has no output schema, so its answer has no fields; "
                        f"add output: {{schema: ...}} to '{ref.name}', or use {{{{ {ref.name}.output }}}} for its whole text"
                    ),
                )
            )
            continue
        problem = field_problem(seen.schema, ref.fields, root=seen.root)
        if problem is not None:
            found.append((ref.offset, f"uses {ref.text}, but {_output_of(upstream)} {problem}"))
    return found


def _item_problems(
    text: str, agent: AgentFacts, agents: Mapping[str, AgentFacts]
) -> list[tuple[int, str]]:
    """``{{ item }}`` and friends only in a fan-out; ``{{ item.FIELD }}`` a field its items have."""
    found: list[tuple[int, str]] = []
    items = None if agent.for_each is None else _item_schema(agent, agents)
    for ref in references(text):
        if ref.kind != "item":
            continue
        if agent.for_each is None:
            found.append(
                (
                    ref.offset,
                    f"uses {ref.text}, but only an agent with for_each has an item; "
                    "add for_each: AGENT.output.LIST to run it once per item of that list",
                )
            )
        elif items is not None and ref.fields:
            source, list_path, seen = items
            problem = field_problem(
                seen.schema, (*list_path.fields, 0, *ref.fields), root=seen.root
            )
            if problem is not None:
                found.append(
                    (
                        ref.offset,
                        f"uses {ref.text}, an item of {list_path.text}, but {_output_of(source)} {problem}",
                    )
                )
    return found


@dataclass(frozen=True)
class OutputSchema:
    """An agent's output as its dependents read it: ``schema`` (``true``: cannot tell), and
    ``root``, where its local ``$ref``s point."""

    schema: Any
    root: Any


def output_schema(agent: AgentFacts) -> OutputSchema | None:
    """What an agent's output holds, downstream; None when it is text (no schema, no fan-out).
    A fan-out's output is the list of its instances' answers."""
    own = agent.schema if agent.has_schema else None
    answer: Any = own
    if own is None:  # text, or a schema that cannot be read here (true: anything)
        answer = True if agent.has_schema else {"type": "string"}
    if agent.for_each is not None:
        return OutputSchema({"type": "array", "items": answer}, own)
    return OutputSchema(answer, own) if agent.has_schema else None


def _output_of(agent: AgentFacts) -> str:
    if agent.for_each is not None:
        return f"the output of '{agent.name}' (a fan-out: the list of its items' answers)"
    return f"the output schema of '{agent.name}'"


def _item_schema(
    agent: AgentFacts, agents: Mapping[str, AgentFacts]
) -> tuple[AgentFacts, PathNode, OutputSchema] | None:
    """The fan-out's source agent, its list path and output schema, when the list checks out
    (the problems of a list that does not are reported on for_each)."""
    try:
        root = parse_expression(agent.for_each).root if isinstance(agent.for_each, str) else None
    except ExpressionError:
        return None
    if not (isinstance(root, PathNode) and root.kind == "agent" and root.name in agents):
        return None
    source = agents[root.name]
    seen = output_schema(source)
    if seen is None:
        return None
    node = field_schema(seen.schema, root.fields, root=seen.root)
    if node is None or not _is_list(node, seen.root):
        return None
    return source, root, seen


# --- fan-out and routing: for_each, when and the keys that go with them ----------------------

_WHOLE_TEXT_TESTS = ("==", "!=", "in", "not in")
_FAN_OUT_KEYS = {
    "max_items": "it caps the items of a fan-out",
    "on_item_error": "it says what a failed item of a fan-out does",
}


def _fan_out_key_problems(facts: WorkflowFacts) -> list[Problem]:
    problems = []
    for agent in facts.agents:
        if agent.for_each is not None:
            continue
        for key, why in _FAN_OUT_KEYS.items():
            if getattr(agent, key) is not None:
                problems.append(
                    Problem(
                        ("agents", agent.index, key),
                        f"{agent.label}: {key} is only with for_each ({why}); "
                        "remove it, or add for_each: AGENT.output.LIST",
                        at_key=True,
                    )
                )
    return problems


def _expression_problems(
    facts: WorkflowFacts, waits_for: Mapping[int, Condition | None]
) -> list[Problem]:
    problems = []
    by_name = {agent.name: agent for agent in facts.agents if agent.name}
    for agent in facts.agents:
        for key in ("for_each", "when"):
            text = getattr(agent, key)
            if not isinstance(text, str) or not text:
                continue  # absent, or a type error reported with the fields
            path: PathKey = ("agents", agent.index, key)
            try:
                expression = parse_expression(text)
            except ExpressionError as error:
                at = None if error.offset is None else min(error.offset, max(len(text) - 1, 0))
                problems.append(Problem(path, f"{agent.label}: {key}: {error.message}", at))
                continue
            upstream = condition_names(waits_for[agent.index]) if agent.index in waits_for else None
            check = _ExpressionCheck(key, expression, agent, facts, by_name, upstream)
            for offset, message in check.problems():
                problems.append(Problem(path, f"{agent.label}: {key} {message}", offset))
    return problems


@dataclass
class _ExpressionCheck:
    """One ``for_each`` or ``when`` of one agent, against the workflow around it."""

    key: str
    expression: Expression
    agent: AgentFacts
    facts: WorkflowFacts
    agents: Mapping[str, AgentFacts]
    upstream: frozenset[str] | None
    found: list[tuple[int, str]] = field(default_factory=list)
    # What is said of an agent it reads that is not in ``upstream``.
    outside: str = "is not in its depends_on; add it there so that it runs first"

    def problems(self) -> list[tuple[int, str]]:
        parents = _parents(self.expression.root)
        readable = [
            path for path in self.expression.paths() if self.path_is_readable(path, parents)
        ]
        if self.key == "for_each":
            self.list_problems()
        for node in self.expression.nodes():
            if isinstance(node, CompareNode):
                self.literal_problems(node, readable)
        return self.found

    def add(self, offset: int, message: str) -> None:
        self.found.append((offset, message))

    def path_is_readable(self, path: PathNode, parents: Mapping[int, Node]) -> bool:
        """Report what is wrong with one path; True when its field can be checked further."""
        if path.kind in ITEM_NAMES:
            self.add(
                path.offset,
                f"cannot read {path.text}: {self.key} is decided once for the whole agent, not per "
                "item (the item is for its task and system prompt)",
            )
            return False
        if path.kind == "input":
            inputs = self.facts.inputs
            if inputs is not None and path.name not in inputs:
                hint = did_you_mean(path.name, inputs) or _declared_inputs_hint(inputs)
                self.add(
                    path.offset, f"refers to undeclared input '{path.name}' in {path.text}{hint}"
                )
            return False
        source = self.agents.get(path.name)
        if source is None:
            known = [name for name in self.agents if name != self.agent.name]
            hint = did_you_mean(path.name, known)
            self.add(path.offset, f"refers to unknown agent '{path.name}' in {path.text}{hint}")
            return False
        if source is self.agent:
            return False  # a cycle, reported with the dependencies
        if self.upstream is not None and path.name not in self.upstream:
            self.add(path.offset, f"reads {path.text}, but '{path.name}' {self.outside}")
            return False
        seen = output_schema(source)
        if seen is None:
            if path.fields:
                self.add(
                    path.offset,
                    f"reads {path.text}, but '{path.name}' has no output schema, so its answer has "
                    f"no fields; add output: {{schema: ...}} to '{path.name}'",
                )
                return False
            parent = parents.get(id(path))
            tested = isinstance(parent, CompareNode) and parent.operator in _WHOLE_TEXT_TESTS
            if not tested and self.key != "for_each":  # for_each: said of the list
                self.add(
                    path.offset,
                    f"reads {path.text}, the text of an agent without an output schema, which can "
                    f"only be compared with ==, !=, in or not in (e.g. {path.text} == 'yes'); "
                    f"add output: {{schema: ...}} to '{path.name}' to test a field",
                )
            return False
        problem = field_problem(seen.schema, path.fields, root=seen.root)
        if problem is not None:
            self.add(path.offset, f"reads {path.text}, but {_output_of(source)} {problem}")
            return False
        return True

    def list_problems(self) -> None:
        """for_each names a list: an array field of an upstream agent's output."""
        root = self.expression.root
        if not isinstance(root, PathNode) or root.kind not in ("agent", "input"):
            if not isinstance(root, PathNode):  # item: reported as a path
                self.add(
                    _start(root),
                    "takes a path to a list in an upstream agent's output, like "
                    "planner.output.sections, not a comparison, a condition or a literal",
                )
            return
        if root.kind == "input":
            self.add(
                root.offset,
                f"takes a list from an upstream agent's output, like planner.output.sections; "
                f"{root.text} is one value given to the run",
            )
            return
        source = self.agents.get(root.name)
        if source is None or source is self.agent:
            return
        seen = output_schema(source)
        if seen is None:
            if root.fields:
                return  # "has no fields", said of the path
            self.add(
                root.offset,
                f"reads {root.text}, but '{root.name}' has no output schema, so its answer is text, "
                f"not a list; add output: {{schema: ...}} to '{root.name}' with an array field "
                "and name it here",
            )
            return
        node = field_schema(seen.schema, root.fields, root=seen.root)
        if node is None or field_problem(seen.schema, root.fields, root=seen.root) is not None:
            return  # cannot tell (true), or the field is missing (reported with the paths)
        if _is_list(node, seen.root):
            return
        types = schema_types(node, seen.root)
        hint = ""
        if lists := _list_fields(node, seen.root):  # a whole object: one of its lists
            hint = f"; did you mean {root.text}.{lists[0]}?"
        elif root.fields and isinstance(root.fields[-1], str):  # a field: a list beside it
            parent = field_schema(seen.schema, root.fields[:-1], root=seen.root)
            if lists := _list_fields(parent, seen.root):
                prefix = root.text[: -len(root.fields[-1])]
                hint = f"; did you mean {prefix}{lists[0]}?"
        if types is None:
            self.add(
                root.offset,
                f"reads {root.text}, which the output schema of '{root.name}' does not declare "
                f"a list; give it type: array{hint}",
            )
        else:
            self.add(
                root.offset,
                f"reads {root.text}, which is {_kinds(types)}, not an array; for_each needs a list{hint}",
            )

    def literal_problems(self, node: CompareNode, readable: list[PathNode]) -> None:
        """A literal compared with a field: one of its enum values, of its type."""
        pairs: list[tuple[PathNode, LiteralNode]] = []
        if isinstance(node.left, PathNode) and isinstance(node.right, LiteralNode):
            pairs.append((node.left, node.right))
        elif isinstance(node.right, PathNode) and isinstance(node.left, LiteralNode):
            if node.operator not in ("in", "not in"):
                pairs.append((node.right, node.left))
        elif (
            isinstance(node.left, PathNode)
            and isinstance(node.right, ListNode)
            and node.operator in ("in", "not in")
        ):
            pairs += [
                (node.left, item) for item in node.right.items if isinstance(item, LiteralNode)
            ]
        ordering = node.operator not in _WHOLE_TEXT_TESTS
        for path, literal in pairs:
            if path not in readable or literal.value is None:
                continue  # a guard against null fits any field: the agent may not have succeeded
            source = self.agents[path.name]
            seen = output_schema(source)
            assert seen is not None  # readable
            schema = field_schema(seen.schema, path.fields, root=seen.root)
            values = None if ordering else schema_values(schema, seen.root)
            if values is not None and not any(equal(literal.value, value) for value in values):
                choices = [value for value in values if value is not None]
                words = [v if isinstance(v, str) else show(v) for v in choices]
                hint = (
                    did_you_mean(literal.value, [v for v in choices if isinstance(v, str)])
                    if isinstance(literal.value, str)
                    else ""
                )
                self.add(
                    literal.offset,
                    f"compares {path.text} with {literal.text}, which is not one of "
                    f"{', '.join(words)}{hint}",
                )
                continue
            types = schema_types(schema, seen.root)
            kind = json_type(literal.value)
            numbers = {"integer", "number"}
            if types is None or kind in types or (kind in numbers and numbers & types):
                continue  # 2.5 against an integer field may be a threshold, not a mistake
            never = "they cannot be ordered" if ordering else "they are never equal"
            self.add(
                literal.offset,
                f"compares {path.text} ({_kinds(types)}) with {literal.text} ({_kinds([kind])}); {never}",
            )


def _is_list(node: Any, root: Any) -> bool:
    """Whether a subschema says it is an array (``type: array``, or ``items`` without a type)."""
    types = schema_types(node, root)
    if types is not None:
        return "array" in types
    return isinstance(node, Mapping) and ("items" in node or "prefixItems" in node)


def _parents(root: Node) -> dict[int, Node]:
    """Each node's parent, by the child's id."""
    return {id(child): node for node in walk(root) for child in children(node)}


def _start(node: Node) -> int:
    """Where a node's text starts (a comparison's offset is its operator's)."""
    while isinstance(node, CompareNode):
        node = node.left
    return node.offset


def _list_fields(node: Any, root: Any) -> list[str]:
    """The fields of an object schema that are arrays, for a did-you-mean."""
    properties = node.get("properties") if isinstance(node, Mapping) else None
    if not isinstance(properties, Mapping):
        return []
    return [
        str(name)
        for name, child in properties.items()
        if "array" in (schema_types(child, root) or ())
    ]


def _kinds(types: Collection[str]) -> str:
    """``a string``, ``an integer or null``."""
    ordered = sorted(types, key=lambda kind: (kind == "null", kind))
    words = [f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}" for kind in ordered]
    words = [word if word != "a null" else "null" for word in words]
    return " or ".join(words)


# --- loops ------------------------------------------------------------------------------


def _loop_problems(
    facts: WorkflowFacts, waits_for: Mapping[int, Condition | None]
) -> list[Problem]:
    problems: list[Problem] = []
    known = _agent_names(facts)
    by_name = {agent.name: agent for agent in facts.agents if agent.name}
    named: dict[str, int] = {}
    looped: dict[str, LoopFacts] = {}  # member -> the first loop listing it
    for loop in facts.loops:
        if loop.name is not None:
            if loop.name in named:
                problems.append(
                    Problem(
                        ("loops", loop.index, "name"),
                        f"duplicate loop name '{loop.name}' (also loop #{named[loop.name] + 1}); "
                        "give each loop a unique name",
                    )
                )
            named.setdefault(loop.name, loop.index)
        listed: set[str] = set()
        for position, member in enumerate(loop.agents if isinstance(loop.agents, list) else []):
            if not isinstance(member, str):
                continue
            path: PathKey = ("loops", loop.index, "agents", position)
            if member not in known:
                hint = did_you_mean(member, known) or (
                    f"; known agents: {', '.join(known)}" if 0 < len(known) <= 10 else ""
                )
                problems.append(Problem(path, f"{loop.label} lists unknown agent '{member}'{hint}"))
            elif member in listed:
                problems.append(
                    Problem(path, f"{loop.label} lists '{member}' twice; list each agent once")
                )
            elif member in looped:
                problems.append(
                    Problem(
                        path,
                        f"{loop.label} lists '{member}', which is already in "
                        f"{looped[member].label}; an agent belongs to one loop at most",
                    )
                )
            listed.add(member)
            looped.setdefault(member, loop)
    dependencies = {
        agent.name: condition_names(waits_for[agent.index])
        for agent in facts.agents
        if agent.name and agent.index in waits_for
    }
    for agent in facts.agents:
        if agent.approval is None:
            continue
        where = (
            "a fan-out (for_each)"
            if agent.for_each is not None
            else f"a member of {looped[agent.name].label}"
            if agent.name in looped
            else None
        )
        if where is not None:
            problems.append(
                Problem(
                    ("agents", agent.index, "approval"),
                    f"{agent.label}: approval is not supported on {where}: a person would be "
                    "asked once per item or iteration; put the approval on an agent after it",
                    at_key=True,
                )
            )
    for loop in facts.loops:
        members = {m for m in loop.members if looped.get(m) is loop}
        problems += _around_loop(loop, members, dependencies)
        problems += _until_problems(loop, members, facts, by_name)
    return problems


def _around_loop(
    loop: LoopFacts, members: set[str], dependencies: Mapping[str, frozenset[str]]
) -> list[Problem]:
    """An agent outside the loop that a member needs and that needs a member: the loop, a
    unit, would wait for it and it for the loop."""
    if not members:
        return []
    before = _reach(members, dependencies) - members
    users: dict[str, set[str]] = {}
    for name, deps in dependencies.items():
        for dep in deps:
            users.setdefault(dep, set()).add(name)
    after = _reach(members, users) - members
    both = sorted(before & after)
    if not both:
        return []
    name = both[0]
    needs = next(m for m in sorted(members) if name in _reach({m}, dependencies))
    needed = next(m for m in sorted(members) if m in _reach({name}, dependencies))
    return [
        Problem(
            ("loops", loop.index, "agents"),
            f"{loop.label}: '{needs}' needs '{name}', which needs '{needed}', but a loop runs "
            f"as one unit, before or after any agent outside it; move '{name}' into the loop "
            "or break one of those dependencies",
        )
    ]


def _reach(start: set[str], edges: Mapping[str, Collection[str]]) -> set[str]:
    """Every name reachable from ``start`` along ``edges``."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _until_problems(
    loop: LoopFacts,
    members: set[str],
    facts: WorkflowFacts,
    agents: Mapping[str, AgentFacts],
) -> list[Problem]:
    """``until`` is an expression of ``when``'s language over this iteration's members."""
    text = loop.until
    if not isinstance(text, str) or not text:
        return []
    path: PathKey = ("loops", loop.index, "until")
    try:
        expression = parse_expression(text)
    except ExpressionError as error:
        at = None if error.offset is None else min(error.offset, max(len(text) - 1, 0))
        return [Problem(path, f"{loop.label}: until: {error.message}", at)]
    owner = AgentFacts(-1, None, None, None, None, None)  # until is the loop's, no agent's
    check = _ExpressionCheck(
        "until",
        expression,
        owner,
        facts,
        agents,
        frozenset(members),
        outside=(
            f"is not a member of {loop.label}; until reads what the loop's agents answered "
            "in the iteration that just ended"
        ),
    )
    return [
        Problem(path, f"{loop.label}: until {message}", offset)
        for offset, message in check.problems()
    ]


def _previous_problems(facts: WorkflowFacts) -> list[Problem]:
    """``{{ NAME.previous.output }}``: only in a loop's member, NAME a member of the same loop,
    its fields ones NAME's output schema has."""
    loop_of: dict[str, LoopFacts] = {}
    for each in facts.loops:
        for member in each.members:
            loop_of.setdefault(member, each)
    by_name = {agent.name: agent for agent in facts.agents if agent.name}
    problems = []
    for agent in facts.agents:
        loop = loop_of.get(agent.name) if agent.name else None
        for field_name in ("task", "system"):
            text = getattr(agent, field_name)
            if not text:
                continue
            path: PathKey = ("agents", agent.index, field_name)
            for ref in references(text):
                if ref.kind != "previous":
                    continue
                message = None
                if loop is None:
                    message = (
                        f"uses {ref.text}, but '{agent.name}' is in no loop, so it has no previous "
                        "iteration; list it under loops: or use "
                        f"{{{{ {ref.name}.output }}}}"
                    )
                elif loop_of.get(ref.name) is not loop:
                    message = (
                        f"uses {ref.text}, but '{ref.name}' is not a member of {loop.label}; "
                        "previous reads an answer of the same loop one iteration back"
                    )
                elif ref.fields:
                    seen = output_schema(by_name[ref.name])
                    if seen is None:
                        message = (
                            f"uses {ref.text}, but '{ref.name}' has no output schema, so its answer "
                            f"has no fields; add output: {{schema: ...}} to '{ref.name}'"
                        )
                    elif (
                        problem := field_problem(seen.schema, ref.fields, root=seen.root)
                    ) is not None:
                        message = f"uses {ref.text}, but {_output_of(by_name[ref.name])} {problem}"
                if message is not None:
                    problems.append(
                        Problem(path, f"{agent.label}: {field_name} {message}", ref.offset)
                    )
    return problems


# --- output schemas ----------------------------------------------------------------------


def _schema_problems(facts: WorkflowFacts) -> list[Problem]:
    """Each inline output schema is itself a valid JSON Schema whose refs stay inside it (files
    are checked as they are read)."""
    problems = []
    for agent in facts.agents:
        schema = agent.schema
        if schema is None:
            continue
        found = schema_problem(schema)
        if found is not None:
            inner, message = found
            problems.append(
                Problem(
                    ("agents", agent.index, "output", "schema", *inner),
                    f"{agent.label}: output.schema is not a valid JSON Schema (Draft 2020-12) {message}",
                )
            )
            continue
        loose = reference_problem(schema)
        if loose is not None:
            inner, message = loose
            problems.append(
                Problem(
                    ("agents", agent.index, "output", "schema", *inner),
                    f"{agent.label}: output.schema {message}",
                )
            )
    return problems


def _text_problems(
    text: str,
    facts: WorkflowFacts,
    known: Mapping[str, None],
    upstream: frozenset[str] | None,
) -> list[tuple[int, str]]:
    inputs = facts.inputs or {}
    found: list[tuple[int, str]] = []
    for ref in references(text):
        if ref.kind == "agent" and ref.name not in known:
            hint = did_you_mean(ref.name, known)
            found.append((ref.offset, f"refers to unknown agent '{ref.name}' in {ref.text}{hint}"))
        elif ref.kind == "agent" and upstream is not None and ref.name not in upstream:
            found.append(
                (
                    ref.offset,
                    f"uses {ref.text}, but '{ref.name}' is not in its depends_on; add it there "
                    "so that it runs first",
                )
            )
        elif ref.kind == "input" and facts.inputs is not None and ref.name not in facts.inputs:
            hint = did_you_mean(ref.name, inputs) or _declared_inputs_hint(inputs)
            found.append(
                (ref.offset, f"refers to undeclared input '{ref.name}' in {ref.text}{hint}")
            )
        elif ref.kind == "invalid":
            hint = _placeholder_hint(ref.name, known, inputs)
            found.append(
                (
                    ref.offset,
                    f"has an unsupported placeholder {_snippet(ref.text)}; only {_TEMPLATE_FORMS} are allowed{hint}",
                )
            )
    covered = [match.span() for match in PLACEHOLDER.finditer(text)]
    start = 0
    while (at := text.find("{{", start)) >= 0:
        if not any(low <= at < high for low, high in covered):
            found.append((at, "has '{{' without a closing '}}'; close the placeholder"))
            break
        start = at + 2
    if match := _JINJA_TAG.search(text):  # the first is enough: the others are the same mistake
        found.append(
            (
                match.start(),
                f"has '{_snippet(match.group(0))}': Jinja tags are not supported, only {_TEMPLATE_FORMS}",
            )
        )
    for match in _DOLLAR.finditer(text):
        owner, attribute = match.groups()
        suggestion = (
            f"{{{{ inputs.{attribute} }}}}"
            if owner in ("inputs", "input")
            else f"{{{{ {owner}.output }}}}"
        )
        found.append((match.start(), f"has {match.group(0)}; write {suggestion} instead"))
    for match in _SINGLE_BRACES.finditer(text):
        name = match.group(1)
        if name in inputs:
            found.append(
                (
                    match.start(),
                    f"has {match.group(0)}; to insert the input write {{{{ inputs.{name} }}}}",
                )
            )
        elif name in known:
            found.append(
                (
                    match.start(),
                    f"has {match.group(0)}; to insert its output write {{{{ {name}.output }}}}",
                )
            )
    return found


def _declared_inputs_hint(inputs: Collection[str]) -> str:
    if not inputs:
        return "; declare it under inputs:"
    return f"; declared inputs: {', '.join(inputs)}" if len(inputs) <= 10 else ""


def _placeholder_hint(inner: str, agents: Collection[str], inputs: Collection[str]) -> str:
    """A did-you-mean for a placeholder in another tool's style (Argo, promptflow, Jinja)."""
    if "|" in inner:
        return " (filters are not supported)"
    parts = [part for part in re.split(r"[.\s\[\]'\"]+", inner) if part]
    if not parts:
        return ""
    head, tail = parts[0], parts[-1]
    suggestion = None
    if head in ("tasks", "steps", "agents", "nodes") and len(parts) >= 2:
        suggestion = f"{parts[1]}.output"
    elif (
        head.lower() in ("inputs", "input", "params", "parameters", "workflow") and len(parts) >= 2
    ):
        input_name = tail if tail in inputs else closest(tail, inputs) or tail
        suggestion = f"inputs.{input_name}"
    elif head in agents:
        suggestion = f"{head}.output"
    elif head in inputs:
        suggestion = f"inputs.{head}"
    elif (agent := closest(head, agents)) is not None:
        suggestion = f"{agent}.output"
    elif (name := closest(head, inputs)) is not None:
        suggestion = f"inputs.{name}"
    return f"; did you mean {{{{ {suggestion} }}}}?" if suggestion else ""


# --- providers and inputs --------------------------------------------------------------


def _provider_problems(facts: WorkflowFacts) -> list[Problem]:
    choices = [*BUILTIN_PROVIDERS, *sorted(facts.providers - set(BUILTIN_PROVIDERS))]
    problems = []
    for agent in facts.agents:
        if agent.provider is not None and agent.provider not in choices:
            hint = did_you_mean(agent.provider, choices)
            problems.append(
                Problem(
                    ("agents", agent.index, "provider"),
                    f"{agent.label}: unknown provider '{agent.provider}'{hint} "
                    f"(use {', '.join(BUILTIN_PROVIDERS)} or a name defined under providers:)",
                )
            )
    return problems


def _input_problems(facts: WorkflowFacts) -> list[Problem]:
    problems = []
    for name, spec in (facts.inputs or {}).items():
        path: PathKey = ("inputs", name)
        if not _INPUT_NAME.match(name):
            problems.append(
                Problem(
                    path,
                    f"input name '{name}' cannot be used in {{{{ inputs.NAME }}}}; "
                    "use letters, digits and '_' (not starting with a digit)",
                    at_key=True,
                )
            )
        if spec.required is True and spec.default is not None:
            problems.append(
                Problem(
                    path,
                    f"input '{name}' has a default and required: true; remove one "
                    "(an input with a default is optional)",
                    at_key=True,
                )
            )
    return problems


# --- tools -------------------------------------------------------------------------------

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
TOOL_PREFIX = re.compile(r"^[A-Za-z0-9_-]{0,63}$")
_PYTHON_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MCP_ONLY = ("allow", "startup_timeout")
_STDIO_KEYS = ("command", "args", "env")
_HTTP_KEYS = ("url", "headers")


def _tool_problems(facts: WorkflowFacts) -> list[Problem]:
    problems: list[Problem] = []
    for name, tool in (facts.tools or {}).items():
        where: PathKey = ("tools", name)
        if not TOOL_NAME.match(name):
            problems.append(
                Problem(
                    where,
                    f"tool name '{name}' is not valid: start with a letter or '_' and use only letters, "
                    "digits, '_' and '-' (at most 64)",
                    at_key=True,
                )
            )
        kinds = [key for key in ("python", "mcp") if key in tool.fields]
        if not kinds:
            problems.append(
                Problem(
                    where,
                    f"tool '{name}' needs python: \"module:function\" or mcp: {{command: ...}} "
                    "(a server over stdio) or mcp: {url: ...} (over HTTP)",
                    at_key=True,
                )
            )
        elif len(kinds) == 2:
            problems.append(
                Problem(
                    (*where, "mcp"),
                    f"tool '{name}' has both python: and mcp:; a tool is one or the other",
                    at_key=True,
                )
            )
        target = tool.fields.get("python")
        if isinstance(target, str) and not _PYTHON_TARGET.match(target.strip()):
            problems.append(
                Problem(
                    (*where, "python"),
                    f'tools.{name}.python must be "module:function" (e.g. "mytools:add"), got {target!r}',
                )
            )
        if "python" in tool.fields:
            for key in _MCP_ONLY:
                if key in tool.fields:
                    problems.append(
                        Problem(
                            (*where, key),
                            f"tools.{name}.{key} is for MCP servers; remove it from this Python tool",
                            at_key=True,
                        )
                    )
        prefix = tool.fields.get("prefix")
        if isinstance(prefix, str) and not TOOL_PREFIX.match(prefix):
            problems.append(
                Problem(
                    (*where, "prefix"),
                    f"tools.{name}.prefix {prefix!r} may use only letters, digits, '_' and '-'",
                )
            )
        if tool.mcp is not None:
            problems += _mcp_problems(name, tool.mcp)
    return problems


def _mcp_problems(name: str, mcp: Mapping[str, Any]) -> list[Problem]:
    where: PathKey = ("tools", name, "mcp")
    stdio = [key for key in _STDIO_KEYS if key in mcp]
    http = [key for key in _HTTP_KEYS if key in mcp]
    if "command" not in mcp and "url" not in mcp:
        return [
            Problem(
                where,
                f"tools.{name}.mcp needs command: (a server started over stdio) or url: (streamable HTTP)",
            )
        ]
    if stdio and http:
        return [
            Problem(
                (*where, http[0]),
                f"tools.{name}.mcp mixes stdio ({', '.join(stdio)}) and HTTP ({', '.join(http)}) "
                "keys; keep command/args/env for a server started over stdio, or url/headers for one over HTTP",
                at_key=True,
            )
        ]
    url = mcp.get("url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        return [
            Problem(
                (*where, "url"), f"tools.{name}.mcp.url '{url}' is not an http:// or https:// URL"
            )
        ]
    return []


def _agent_tool_problems(facts: WorkflowFacts) -> list[Problem]:
    if facts.tools is None:
        return []
    tools = facts.tools
    problems = []
    for agent in facts.agents:
        picks = agent.tools if isinstance(agent.tools, list) else []
        seen: set[str] = set()
        for index, pick in enumerate(picks):
            if not isinstance(pick, str):
                continue  # a type error, reported by the field check
            path: PathKey = ("agents", agent.index, "tools", index)
            if pick in seen:
                problems.append(
                    Problem(path, f"{agent.label}: tool '{pick}' is listed twice; list it once")
                )
            seen.add(pick)
            message = _pick_problem(pick, tools)
            if message:
                problems.append(Problem(path, f"{agent.label}: {message}"))
    return problems


def _pick_problem(pick: str, tools: Mapping[str, ToolFacts]) -> str | None:
    server_name, dot, tool_name = pick.partition(".")
    if server_name not in tools:
        hint = did_you_mean(server_name, tools) or (
            f"; defined tools: {', '.join(tools)}"
            if 0 < len(tools) <= 10
            else "; define it under tools:"
        )
        return f"unknown tool '{pick}'{hint}"
    if not dot:
        return None
    server = tools[server_name]
    if not server.is_mcp:
        return f"'{server_name}' is a Python tool, not an MCP server: write '{server_name}' (SERVER.TOOL picks one tool of a server)"
    allow = server.fields.get("allow")
    if isinstance(allow, list) and tool_name not in allow:
        hint = did_you_mean(tool_name, [str(a) for a in allow])
        return f"'{pick}': tool '{tool_name}' is not in tools.{server_name}.allow{hint}; add it there or remove it here"
    if not tool_name:
        return f"'{pick}' names no tool after the dot; write '{server_name}' for all of its tools"
    return None
