"""Workflow files → a validated ``spec.Workflow``, or every problem as ``file:line:column``.

Three passes, all of which always run so that a file's problems are reported
together: YAML reading (``yaml_source``: syntax, duplicate keys, hostile
input), field types (pydantic, whose error paths are mapped back to the YAML
nodes and reworded with the fix), and whole-workflow checks (``checks``:
dependencies, cycles, templates, providers).
"""

from __future__ import annotations

import codecs
import json
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentops.errors import Diagnostic, UsageError, WorkflowError
from agentops.workflow.checks import Problem, WorkflowFacts, find_problems
from agentops.workflow.files import NotRegularFileError, open_regular
from agentops.workflow.schemas import reference_problem, schema_problem, strict_mode_problem
from agentops.workflow.spec import Workflow
from agentops.workflow.suggest import closest
from agentops.workflow.yaml_source import (
    MAX_FILE_BYTES,
    PathKey,
    Position,
    YamlDocument,
    YamlSyntaxError,
    parse_yaml,
)

__all__ = [
    "MAX_FILE_BYTES",
    "LoadedWorkflow",
    "check_workflow",
    "load_workflow",
    "load_workflow_text",
    "read_schema_file",
    "resolve_schema_files",
    "strict_mode_warnings",
    "validate_workflow",
]


@dataclass(frozen=True)
class LoadedWorkflow:
    workflow: Workflow
    source: str  # the text as read, for the run history
    path: str | None  # None when loaded from text

    @property
    def folder(self) -> Path:
        """Where the file is (its Python tools and stdio servers are found from there); else the working directory."""
        return Path(self.path).resolve().parent if self.path else Path.cwd()

    def warnings(self) -> list[Diagnostic]:
        """What is valid but deserves a word (``validate`` prints these): schemas strict mode cannot take."""
        return [
            self.diagnostic(
                ("agents", index, "output", "schema"), f"warning: {message}", at_key=True
            )
            for index, message in strict_mode_warnings(self.workflow)
        ]

    def diagnostic(self, path: PathKey, message: str, *, at_key: bool = False) -> Diagnostic:
        """``message`` at the value at ``path``, for problems found after loading (a tool that
        does not import, a server without the tool named). The source is read again: such
        problems are rare, so no run keeps every position in memory for them."""
        try:
            position = parse_yaml(self.source).position(path, at_key=at_key)
        except YamlSyntaxError:
            position = Position(1, 1)
        return _diagnostic(self.path or "<workflow>", position, message)


def strict_mode_warnings(workflow: Workflow) -> list[tuple[int, str]]:
    """(agent index, warning) for each output schema OpenAI's strict mode cannot take: such a
    schema is sent non-strict (the answer is still validated here). The local model is exempt."""
    found = []
    for index, agent in enumerate(workflow.agents):
        if (
            agent.output is None
            or not isinstance(agent.output.json_schema, dict)
            or _routed_locally(workflow, agent.provider, agent.model)
        ):
            continue
        rule = strict_mode_problem(agent.output.json_schema)
        if rule is not None:
            found.append(
                (
                    index,
                    (
                        f"agent '{agent.name}': the output schema breaks a rule of OpenAI's strict mode ({rule}), "
                        "so it is sent with strict: false and the answer is only validated after it arrives; "
                        "fix the schema to have it enforced while the model writes"
                    ),
                )
            )
    return found


def _routed_locally(workflow: Workflow, provider: str | None, model: str) -> bool:
    name = provider or (model.partition(":")[0] if ":" in model else None)
    if name is None:
        return False
    spec = workflow.providers.get(name)
    return (spec.type if spec is not None else name) == "local"


def load_workflow(path: str | Path) -> LoadedWorkflow:
    """Read and validate a workflow file. Raises WorkflowError (every problem) or UsageError (unreadable)."""
    name = str(path)
    try:
        with open_regular(path) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a directory; give the path of a workflow .yaml file") from None
    except NotRegularFileError as error:
        raise UsageError(
            f"{name} is {error.kind}, not a regular file; give the path of a workflow .yaml file"
        ) from None
    except OSError as error:
        raise UsageError(f"cannot read {name}: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise WorkflowError(
            [
                Diagnostic(
                    name,
                    1,
                    1,
                    f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB, the limit for workflow files; "
                    "split it or move large text out of it",
                )
            ]
        )
    text = _decode(raw, name)
    loaded = load_workflow_text(text, name)
    return LoadedWorkflow(loaded.workflow, loaded.source, name)


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass  # reported below as not UTF-8
    nul = raw.find(b"\0")
    if nul >= 0:
        line, column = _byte_position(raw, nul)
        raise WorkflowError(
            [
                Diagnostic(
                    name,
                    line,
                    column,
                    "the file contains NUL bytes; it looks binary, not a YAML text file",
                )
            ]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = _byte_position(raw, error.start)
        raise WorkflowError(
            [
                Diagnostic(
                    name,
                    line,
                    column,
                    f"the file is not valid UTF-8 (byte 0x{raw[error.start]:02x}); save it with UTF-8 encoding",
                )
            ]
        ) from None


def _byte_position(raw: bytes, index: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, index) + 1
    column = len(raw[line_start:index].decode("utf-8", errors="replace")) + 1
    return raw.count(b"\n", 0, index) + 1, column


def load_workflow_text(text: str, filename: str = "<string>") -> LoadedWorkflow:
    """Validate workflow YAML given as text; ``filename`` only labels the diagnostics."""
    source = text[1:] if text.startswith("\ufeff") else text
    try:
        document = parse_yaml(source)
    except YamlSyntaxError as error:
        raise WorkflowError([_diagnostic(filename, error.position, error.message)]) from None
    found = [(position, message) for position, message in document.problems]
    data = document.data
    if not isinstance(data, dict):
        found.append((Position(1, 1), _top_level_message(data)))
        raise WorkflowError(_sorted(filename, found))
    data = _without_empty_sections(data)
    data, schema_diagnostics = _read_schema_files(data, filename, document)
    found += [
        (position, message)
        for position, message in schema_diagnostics
        if isinstance(position, Position)
    ]
    elsewhere = [item for _, item in schema_diagnostics if isinstance(item, Diagnostic)]
    workflow: Workflow | None = None
    invalid: ValidationError | None = None
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as error:
        found += _type_problems(error, data, document)
        invalid = error
    found += [
        (document.position(path), message)
        for path, message in _booleans_as_numbers(data, data, Workflow, ())
    ]
    facts = WorkflowFacts.from_workflow(workflow) if workflow else WorkflowFacts.from_data(data)
    found += [
        (_problem_position(problem, document), problem.message) for problem in find_problems(facts)
    ]
    if (
        invalid is not None and not found
    ):  # every type error is reworded above; never raise an empty error
        first = invalid.errors(include_url=False)[0]
        found.append(
            (
                document.position(_resolve(dict(first), data).path),
                f"invalid workflow: {first['msg']}",
            )
        )
    if found or elsewhere or workflow is None:
        raise WorkflowError(_sorted(filename, found) + elsewhere)
    return LoadedWorkflow(workflow, text, None)


# --- output schemas given as paths ----------------------------------------------------------


def _schema_folder(filename: str) -> Path:
    """Schema paths are relative to the workflow file; for text without a file, to the working directory."""
    if filename.startswith("<"):
        return Path.cwd()
    return Path(filename).parent


def read_schema_file(path: Path) -> Any:
    """A schema file's content (JSON, or YAML for .yaml/.yml); raises OSError or ``SchemaFileError``."""
    text = _schema_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            document = parse_yaml(text)
        except YamlSyntaxError as error:
            raise SchemaFileError(
                error.position.line, error.position.column, error.message
            ) from None
        return document.data
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaFileError(error.lineno, error.colno, f"not valid JSON: {error.msg}") from None
    except RecursionError:
        raise SchemaFileError(1, 1, "the JSON nests too deeply") from None


def _schema_text(path: Path) -> str:
    """A schema file's text: a regular file, within the size limit of workflow files."""
    try:
        with open_regular(path) as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except (IsADirectoryError, NotRegularFileError):  # a folder, a device, a pipe: never read one
        raise SchemaFileError(
            1, 1, "not a regular file; give the path of a .json schema file"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SchemaFileError(
            1,
            1,
            f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB, the limit for schema files",
        )
    return raw.decode("utf-8-sig")


def _schema_file_problem(path: Path, schema: Any, label: str) -> Diagnostic | None:
    """Why the schema read from ``path`` cannot be used, as a diagnostic in that file; None if it can."""
    problem = schema_problem(schema)
    if problem is not None:
        return Diagnostic(
            str(path), 1, 1, f"output schema of {label} is not a valid JSON Schema: {problem[1]}"
        )
    loose = reference_problem(schema)
    if loose is None:
        return None
    where, message = loose
    try:  # read again for the position: a problem is rare, so no load keeps positions for it
        position = parse_yaml(_schema_text(path)).position(where)  # JSON is YAML too, mostly
    except (OSError, UnicodeDecodeError, SchemaFileError, YamlSyntaxError):
        position = Position(1, 1)
    return Diagnostic(
        str(path), position.line, position.column, f"output schema of {label} {message}"
    )


class SchemaFileError(ValueError):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


def _read_schema_files(
    data: dict[str, Any], filename: str, document: YamlDocument
) -> tuple[dict[str, Any], list[tuple[Position | None, Any]]]:
    """``output.schema: path`` replaced by the file's schema; problems at the workflow's line (the
    file is missing) or in the schema file (it does not parse, is no valid JSON Schema, or a
    $ref of it leaves it or loops)."""
    agents = data.get("agents")
    if not isinstance(agents, list):
        return data, []
    problems: list[tuple[Position | None, Any]] = []
    copied: list[Any] = list(agents)
    for index, agent in enumerate(agents):
        output = agent.get("output") if isinstance(agent, dict) else None
        if not isinstance(output, dict) or not isinstance(output.get("schema"), str):
            continue
        given = output["schema"]
        where: PathKey = ("agents", index, "output", "schema")
        label = _agent_label(index, data)
        path = _schema_folder(filename) / given
        try:
            schema = read_schema_file(path)
        except FileNotFoundError:
            problems.append(
                (
                    document.position(where),
                    (
                        f"{label}: output.schema file '{given}' not found (looked in {path.parent}; "
                        "a path is relative to the workflow file)"
                    ),
                )
            )
            continue
        except SchemaFileError as error:
            problems.append(
                (
                    None,
                    Diagnostic(
                        str(path),
                        error.line,
                        error.column,
                        f"output schema of {label}: {error.message}",
                    ),
                )
            )
            continue
        except (OSError, UnicodeDecodeError) as error:
            problems.append(
                (
                    document.position(where),
                    f"{label}: cannot read output.schema file '{given}': {error}",
                )
            )
            continue
        problem = _schema_file_problem(path, schema, label)
        if problem is not None:
            problems.append((None, problem))
            schema = {}
        copied[index] = {**agent, "output": {**output, "schema": schema}}
    return {**data, "agents": copied}, problems


def resolve_schema_files(workflow: Workflow, folder: Path | None = None) -> Workflow:
    """A Workflow built in Python with ``schema="file.json"``: the files read (relative to ``folder``,
    else the working directory); raises WorkflowError naming the file."""
    agents = []
    changed = False
    for agent in workflow.agents:
        output = agent.output
        if output is None or not isinstance(output.json_schema, str):
            agents.append(agent)
            continue
        path = (folder or Path.cwd()) / output.json_schema
        try:
            schema = read_schema_file(path)
        except SchemaFileError as error:
            raise WorkflowError(
                [
                    Diagnostic(
                        str(path),
                        error.line,
                        error.column,
                        f"output schema of agent '{agent.name}': {error.message}",
                    )
                ]
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise WorkflowError(
                [
                    Diagnostic(
                        "<workflow>",
                        0,
                        0,
                        f"agent '{agent.name}': cannot read output.schema file '{path}': {error}",
                    )
                ]
            ) from None
        problem = _schema_file_problem(path, schema, f"agent '{agent.name}'")
        if problem is not None:
            raise WorkflowError([problem])
        agents.append(
            agent.model_copy(update={"output": output.model_copy(update={"json_schema": schema})})
        )
        changed = True
    return workflow.model_copy(update={"agents": agents}) if changed else workflow


def check_workflow(workflow: Workflow) -> list[tuple[tuple[str | int, ...], str]]:
    """The whole-workflow checks for a Workflow built in Python: (path, message) pairs."""
    return [
        (problem.path, problem.message)
        for problem in find_problems(WorkflowFacts.from_workflow(workflow))
    ]


def validate_workflow(workflow: Workflow) -> None:
    """Raise WorkflowError (file ``<workflow>``, line 0) if ``check_workflow`` finds anything."""
    problems = check_workflow(workflow)
    if problems:
        raise WorkflowError(
            [
                Diagnostic("<workflow>", 0, 0, " ".join(message.splitlines()))
                for _, message in problems
            ]
        )


def _diagnostic(filename: str, position: Position, message: str) -> Diagnostic:
    # One problem, one line: a name or value quoted from the file may hold a line break.
    return Diagnostic(filename, position.line, position.column, " ".join(message.splitlines()))


def _sorted(filename: str, found: Iterable[tuple[Position, str]]) -> list[Diagnostic]:
    unique = sorted(set(found), key=lambda item: (item[0], item[1]))
    return [_diagnostic(filename, position, message) for position, message in unique]


def _problem_position(problem: Problem, document: YamlDocument) -> Position:
    if problem.offset is not None:
        return document.position_in_text(problem.path, problem.offset)
    return document.position(problem.path, at_key=problem.at_key)


def _top_level_message(data: Any) -> str:
    if data is None:
        return "the file is empty; a workflow needs at least name: and agents: (see examples/)"
    return (
        f"the top level is {_describe_value(data)}, but a workflow is a mapping of keys: "
        "name:, agents: and optionally description:, policies:, inputs:, prices:, providers:, tools:, loops:"
    )


_OPTIONAL_SECTIONS = ("policies", "inputs", "prices", "providers", "tools", "loops")


def _without_empty_sections(data: dict[str, Any]) -> dict[str, Any]:
    """``policies:`` with nothing under it (everything commented out) means the defaults."""
    cleaned = {
        key: value
        for key, value in data.items()
        if not (key in _OPTIONAL_SECTIONS and value is None)
    }
    policies = cleaned.get("policies")
    if isinstance(policies, dict) and "backoff" in policies and policies["backoff"] is None:
        cleaned["policies"] = {key: value for key, value in policies.items() if key != "backoff"}
    return cleaned


# --- pydantic errors → messages at YAML positions ----------------------------------------

_Error = dict[str, Any]


@dataclass(frozen=True)
class _Resolved:
    path: PathKey  # the part of ``loc`` that exists in the data (plus a missing key)
    tag_at: int | None  # len(path) where pydantic named a union member, if it did
    tag_index: int | None  # that member's index in ``loc``
    error: _Error


def _type_problems(
    error: ValidationError, data: dict[str, Any], document: YamlDocument
) -> list[tuple[Position, str]]:
    errors = [dict(item) for item in error.errors(include_url=False)]
    found = []
    for path, message, at_key in _messages(errors, data):
        found.append((document.position(path, at_key=at_key), message))
    return found


def _resolve(error: _Error, data: Any) -> _Resolved:
    loc = error["loc"]
    path: list[str | int] = []
    cursor = data
    tag_at = tag_index = None
    for index, segment in enumerate(loc):
        if _has(cursor, segment):
            cursor = cursor[segment]
        elif error["type"] == "missing" and index == len(loc) - 1:
            pass  # the missing key itself
        else:
            if tag_at is None:
                tag_at, tag_index = len(path), index
            continue
        path.append(segment)
    return _Resolved(tuple(path), tag_at, tag_index, error)


def _has(container: Any, segment: str | int) -> bool:
    if isinstance(container, dict):
        return isinstance(segment, str) and segment in container
    return (
        isinstance(container, list) and isinstance(segment, int) and 0 <= segment < len(container)
    )


def _messages(errors: list[_Error], data: dict[str, Any]) -> list[tuple[PathKey, str, bool]]:
    """(path, message, point at the key) for each problem; union alternatives are merged."""
    found: list[tuple[PathKey, str, bool]] = []
    unions: dict[PathKey, list[_Resolved]] = {}
    for item in (_resolve(error, data) for error in errors):
        if _is_dependency(item.path):
            continue  # reworded from the parser's own message by checks
        if item.tag_at is None:
            found.append(_message(item.path, item.error, data))
        else:
            unions.setdefault(item.path[: item.tag_at], []).append(item)
    for prefix, items in unions.items():
        value = _value_at(data, prefix)
        deeper = [
            item
            for item in items
            if len(item.path) > len(prefix) or item.error["type"] in ("missing", "extra_forbidden")
        ]
        if isinstance(value, dict) and deeper:
            # The value is a mapping, so the mapping alternative is what was meant: its errors count.
            stripped = []
            for item in deeper:
                loc = item.error["loc"]
                assert item.tag_index is not None
                stripped.append(
                    {**item.error, "loc": loc[: item.tag_index] + loc[item.tag_index + 1 :]}
                )
            found += _messages(stripped, data)
        else:
            found.append(
                (prefix, _union_message(prefix, [item.error for item in items], data), False)
            )
    return found


def _is_dependency(path: PathKey) -> bool:
    return len(path) >= 3 and path[0] == "agents" and path[2] == "depends_on"


def _value_at(data: Any, path: PathKey) -> Any:
    for segment in path:
        if not _has(data, segment):
            return None
        data = data[segment]
    return data


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "none_required": "empty",
}


def _union_message(path: PathKey, errors: list[_Error], data: Any) -> str:
    value = _value_at(data, path)
    if len(path) == 2 and path[0] == "inputs":
        return (
            f"input '{path[1]}' must be a default value (text, a number or true/false), empty (required), "
            f"or a mapping with description, default, required (got {_describe_value(value)})"
        )
    expected: list[str] = []
    for error in errors:
        word = _EXPECTED.get(error["type"])
        if word and word not in expected:
            expected.append(word)
    if "a number" in expected and "a whole number" in expected:
        expected.remove("a whole number")
    wanted = (
        ", ".join(expected[:-1]) + f" or {expected[-1]}" if len(expected) > 1 else "".join(expected)
    )
    return f"{_subject(path, data)} must be {wanted or 'something else'} (got {_describe_value(value)})"


def _message(path: PathKey, error: _Error, data: Any) -> tuple[PathKey, str, bool]:
    kind: str = error["type"]
    context: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    subject = _subject(path, data)
    got = f" (got {_describe_value(value)})"
    if kind == "extra_forbidden":
        return path, _unknown_key_message(path, data), True
    if kind == "missing":
        return path, _missing_message(path, data), False
    if path == ("agents",) and (kind == "too_short" or value is None):
        return path, "agents is empty; add at least one agent with name, model and task", False
    if (
        kind == "string_pattern_mismatch"
        and len(path) == 3
        and path[0] == "agents"
        and path[2] == "name"
    ):
        return (
            path,
            (
                f"agent name {value!r} is not valid: start with a letter or '_' and use only letters, "
                "digits, '_' and '-'"
            ),
            False,
        )
    if kind in ("string_too_short", "too_short"):
        return path, f"{subject} must not be empty", False
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return path, f"{subject} must be {words} {_number(context.get(key))}{got}", False
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        match = closest(str(value), choices) if isinstance(value, str) else None
        hint = f"; did you mean '{match}'?" if match else ""
        return path, f"{subject} must be one of {context.get('expected')}{got}{hint}", False
    if kind == "finite_number":
        return path, f"{subject} must be a finite number{got}", False
    if kind in _EXPECTED:
        if value is None:
            return path, f"{subject} is empty; give {_EXPECTED[kind]}", False
        return path, f"{subject} must be {_EXPECTED[kind]}{got}{_quote_hint(kind, value)}", False
    return path, f"{subject}: {error['msg']}", False


def _quote_hint(kind: str, value: Any) -> str:
    if kind == "string_type" and isinstance(value, (bool, int, float)):
        return (
            "; YAML read it as a "
            + ("boolean" if isinstance(value, bool) else "number")
            + ", so put it in quotes"
        )
    return ""


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _subject(path: PathKey, data: Any) -> str:
    """How to name the value at ``path``: ``agent 'writer': temperature``, ``policies.retries``."""
    if len(path) >= 2 and path[0] in ("agents", "loops") and isinstance(path[1], int):
        label = _agent_label(path[1], data, str(path[0]))
        rest = ".".join(map(str, path[2:]))
        return f"{label}: {rest}" if rest else label
    return ".".join(map(str, path)) or "the workflow"


def _agent_label(index: int, data: Any, section: str = "agents") -> str:
    """``agent 'writer'`` (or ``loop 'refine'`` under ``loops:``), else by its number."""
    agent = _value_at(data, (section, index))
    name = agent.get("name") if isinstance(agent, dict) else None
    kind = "loop" if section == "loops" else "agent"
    return f"{kind} '{name}'" if isinstance(name, str) and name else f"{kind} #{index + 1}"


def _container(path: PathKey, data: Any) -> str:
    """The mapping at ``path``, as named in "unknown key ... in X"."""
    if not path:
        return "at the top level"
    if len(path) == 2 and path[0] in ("agents", "loops") and isinstance(path[1], int):
        return f"in {_agent_label(path[1], data, str(path[0]))}"
    return f"in {_subject(path, data)}"


def _unknown_key_message(path: PathKey, data: Any) -> str:
    key = str(path[-1])
    allowed = _allowed_keys(path[:-1])
    match = closest(key, allowed, _SYNONYMS) if allowed else None
    if match:
        hint = f"; did you mean '{match}'?"
    elif allowed:
        hint = f"; allowed keys: {', '.join(allowed)}"
    else:
        hint = ""
    return f"unknown key '{key}' {_container(path[:-1], data)}{hint}"


def _missing_message(path: PathKey, data: Any) -> str:
    key = str(path[-1])
    parent = path[:-1]
    example = _MISSING_EXAMPLES.get(key, f"{key}: ...")
    if not parent:
        return f"the workflow has no '{key}'; add {example}"
    owner = (
        _agent_label(int(parent[1]), data, str(parent[0]))
        if parent[0] in ("agents", "loops") and len(parent) == 2
        else _subject(parent, data)
    )
    return f"{owner} is missing '{key}'; add {example}"


_MISSING_EXAMPLES = {
    "name": "name: <a name>",
    "agents": "agents: with at least one agent",
    "model": "model: <model name, e.g. gpt-4o-mini>",
    "task": "task: <what the agent should do>",
    "input": "input: <USD per million input tokens>",
    "output": "output: <USD per million output tokens>",
    "schema": "schema: <a JSON Schema, or the path of a .json file>",
    "max_iterations": "max_iterations: <the most iterations, 1 to 100>",
}

# Names other tools use for our keys (Argo, GitHub Actions, CrewAI, promptflow).
_SYNONYMS = {
    "dependencies": "depends_on",
    "depends": "depends_on",
    "needs": "depends_on",
    "after": "depends_on",
    "requires": "depends_on",
    "prompt": "task",
    "instructions": "task",
    "goal": "task",
    "system_prompt": "system",
    "role": "system",
    "backstory": "system",
    "llm": "model",
    "id": "name",
    "steps": "agents",
    "tasks": "agents",
    "nodes": "agents",
    "crew": "agents",
    "max_retries": "retries",
    "retry": "retries",
    "budget": "cost_cap",
    "max_cost": "cost_cap",
    "parallelism": "max_concurrency",
    "concurrency": "max_concurrency",
    "params": "inputs",
    "parameters": "inputs",
    "arguments": "inputs",
    "policy": "policies",
    "max_output_tokens": "max_tokens",
    "url": "base_url",
    "endpoint": "base_url",
    "api_base": "base_url",
    "api_key": "api_key_env",
    "key": "api_key_env",
}


def _allowed_keys(path: PathKey) -> list[str]:
    """The keys the model at ``path`` accepts, found by walking the spec's field types."""
    model: Any = Workflow
    pending_container = False
    for segment in path:
        if pending_container:  # a list index or a dict key: step into the item type
            pending_container = False
            continue
        fields = (
            _fields_by_key(model)
            if isinstance(model, type) and issubclass(model, BaseModel)
            else {}
        )
        if segment not in fields:
            return []
        annotation = fields[str(segment)].annotation
        pending_container = typing.get_origin(annotation) in (list, dict)
        model = _model_in(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel) and not pending_container:
        return list(_fields_by_key(model))
    return []


def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key written in YAML (its alias, when it has one)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _booleans_as_numbers(
    data: Any, root: dict[str, Any], model: type[BaseModel], path: PathKey
) -> list[tuple[PathKey, str]]:
    """``retries: yes`` passes pydantic as 1; in a workflow it is a mistake, so say so."""
    if not isinstance(data, dict):
        return []
    found = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        kinds = set(typing.get_args(annotation)) or {annotation}
        if isinstance(value, bool) and bool not in kinds and kinds & {int, float}:
            expected = "a number" if float in kinds else "a whole number"
            where = (*path, key)
            found.append(
                (
                    where,
                    f"{_subject(where, root)} must be {expected} (got {_describe_value(value)})",
                )
            )
        inner = _model_in(annotation)
        if inner is None:
            continue
        origin = typing.get_origin(annotation)
        if origin is list and isinstance(value, list):
            for index, item in enumerate(value):
                found += _booleans_as_numbers(item, root, inner, (*path, key, index))
        elif origin is dict and isinstance(value, dict):
            for name, item in value.items():
                found += _booleans_as_numbers(item, root, inner, (*path, key, name))
        elif origin is None:
            found += _booleans_as_numbers(value, root, inner, (*path, key))
    return found


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _describe_value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"text {short!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
