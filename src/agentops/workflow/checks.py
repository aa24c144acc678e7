"""Checks that need the whole workflow, beyond what each field's type says.

Duplicate and reserved agent names, unparseable or unknown dependencies,
cycles, template placeholders (``{{ agent.output }}`` only for the agent's own
dependencies, ``{{ agent.output.field }}`` only for a field its output schema
has, ``{{ inputs.name }}`` only for declared inputs), output schemas that are
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
from typing import Any

from agentops.workflow.graph import (
    Condition,
    ConditionSyntaxError,
    Ref,
    condition_names,
    find_cycle,
    parse_condition,
)
from agentops.workflow.provider_kinds import BUILTIN_PROVIDERS
from agentops.workflow.schemas import field_problem, reference_problem, schema_problem
from agentops.workflow.spec import InputSpec, Workflow
from agentops.workflow.suggest import closest, did_you_mean
from agentops.workflow.templates import PLACEHOLDER, references

PathKey = tuple[str | int, ...]

RESERVED_AGENT_NAMES = frozenset({"inputs"})
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
class WorkflowFacts:
    agents: tuple[AgentFacts, ...]
    inputs: Mapping[str, InputFacts] | None  # None: unknown (the inputs section is malformed)
    providers: frozenset[str] = field(default_factory=frozenset)
    tools: Mapping[str, ToolFacts] | None = None  # None: unknown (the tools section is malformed)

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
        return cls(agents, inputs, frozenset(workflow.providers), tools)

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
        return cls(agents, inputs, providers, tools)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def find_problems(facts: WorkflowFacts) -> list[Problem]:
    """Every cross-field problem in the workflow."""
    problems: list[Problem] = []
    problems += _name_problems(facts)
    conditions, condition_problems = _parse_conditions(facts)
    problems += condition_problems
    problems += _unknown_dependencies(facts, conditions)
    problems += _cycles(facts, conditions)
    problems += _template_problems(facts, conditions)
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
            problems.append(
                Problem(
                    path,
                    f"agent name '{agent.name}' is reserved for {{{{ inputs.NAME }}}} placeholders; rename the agent",
                )
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


def _cycles(facts: WorkflowFacts, conditions: Mapping[int, Condition | None]) -> list[Problem]:
    names = {agent.name for agent in facts.agents if agent.name}
    dependencies: dict[str, set[str]] = {}
    by_name: dict[str, AgentFacts] = {}
    for agent in facts.agents:
        if agent.name and agent.index in conditions:
            dependencies.setdefault(agent.name, set()).update(
                condition_names(conditions[agent.index]) & names
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
        where, offset = locate_dependency(agent.depends_on, second)
        if len(cycle) == 2:
            message = f"agent '{first}' depends on itself; remove '{first}' from its depends_on"
        else:
            message = (
                f"dependency cycle {' → '.join(cycle)} (each agent depends on the next); "
                "remove one of these dependencies"
            )
        problems.append(Problem(("agents", agent.index, "depends_on", *where), message, offset))
    return problems


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
                for offset, message in _field_problems(text, by_name):
                    problems.append(Problem(path, f"{agent.label}: {field_name} {message}", offset))
    return problems


def _field_problems(text: str, agents: Mapping[str, AgentFacts]) -> list[tuple[int, str]]:
    """``{{ NAME.output.FIELD }}``: NAME has an output schema, and the schema has FIELD."""
    found: list[tuple[int, str]] = []
    for ref in references(text):
        if ref.kind != "agent" or not ref.fields or ref.name not in agents:
            continue
        upstream = agents[ref.name]
        if not upstream.has_schema:
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
        problem = (
            field_problem(upstream.schema, ref.fields) if upstream.schema is not None else None
        )
        if problem is not None:
            found.append(
                (ref.offset, f"uses {ref.text}, but the output schema of '{ref.name}' {problem}")
            )
    return found


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
