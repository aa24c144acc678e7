"""YAML text → plain Python data, remembering where every key and value came from.

Parsing uses PyYAML's safe composer (never its full Loader) and builds the
Python values itself from the node tree, so that it can:

- keep each value's and key's line and column, keyed by its path
  (``("agents", 1, "depends_on")``), for ``file:line:column`` diagnostics;
- refuse hostile input instead of exhausting memory or the stack: nesting
  deeper than ``MAX_DEPTH``, aliases expanding to more than ``MAX_ALIAS_NODES``
  nodes (the "billion laughs"), text longer than ``MAX_FILE_BYTES``;
- report duplicate keys and non-text keys, which PyYAML silently accepts.

Speed: where PyYAML has libyaml, a file is first read by the C parser (a
10,000-agent file in 0.5 s instead of 2.6 s). Its composer recurses, so the
event stream is checked against the limits before composing. Anything the C
path does not accept — a syntax error, a limit, an alias bomb — is read again
by the pure-Python composer, whose messages and positions are the ones users see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

PathKey = tuple[str | int, ...]

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Workflow files larger than this (5 MB) are refused before parsing."""

MAX_DEPTH = 40
"""Deepest nesting of mappings and lists accepted."""

MAX_NODES = 300_000
"""Most values (keys, scalars, lists, mappings) one file may hold; parsing is pure Python.
Room for 10,000 agents with every option set (about 21 values each), a bound for alias bombs."""

MAX_ALIAS_NODES = 5_000
"""Most values that ``*alias`` references may expand to, in total."""

_YAML = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass(frozen=True, order=True)
class Position:
    """1-based line and column."""

    line: int
    column: int


@dataclass
class YamlDocument:
    """Parsed data plus where each part of it was written."""

    text: str
    data: Any
    values: dict[PathKey, yaml.Node] = field(default_factory=dict)
    keys: dict[PathKey, yaml.Node] = field(default_factory=dict)
    problems: list[tuple[Position, str]] = field(default_factory=list)
    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.splitlines()
        return self._lines

    def position(self, path: PathKey, *, at_key: bool = False) -> Position:
        """Where the value at ``path`` (or its key) is; the nearest enclosing value if unknown."""
        value = self.values.get(path)
        empty = (
            isinstance(value, yaml.ScalarNode) and value.start_mark.index == value.end_mark.index
        )
        if (
            at_key or empty
        ) and path in self.keys:  # "agents:" with nothing after it: point at the key
            return node_position(self.keys[path])
        for end in range(len(path), -1, -1):
            node = self.values.get(path[:end])
            if node is not None:
                return node_position(node)
        return Position(1, 1)

    def position_in_text(self, path: PathKey, offset: int) -> Position:
        """Where character ``offset`` of the string at ``path`` is in the file (best effort)."""
        node = self.values.get(path)
        if isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            found = _offset_position(self.lines, node, offset)
            if found is not None:
                return found
        return self.position(path)


class YamlSyntaxError(Exception):
    """The text is not YAML we accept; parsing stopped at ``position``."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def node_position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raises YamlSyntaxError for anything unreadable."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlSyntaxError(Position(1, 1), _too_large(len(text)))
    fast = _parse_with_libyaml(text)
    if fast is not None:
        return fast
    try:
        loader = _LimitedLoader(text)
    except yaml.reader.ReaderError as error:
        raise YamlSyntaxError(
            _text_position(text, error.position), _reader_message(error)
        ) from None
    try:
        return _read_document(loader, text)
    except yaml.reader.ReaderError as error:
        raise YamlSyntaxError(
            _text_position(text, error.position), _reader_message(error)
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise YamlSyntaxError(position, _syntax_message(error)) from None
    except yaml.YAMLError as error:  # pragma: no cover - every PyYAML error we know is marked
        raise YamlSyntaxError(Position(1, 1), f"invalid YAML: {error}") from None
    finally:
        loader.dispose()


def _read_document(loader: yaml.SafeLoader | yaml.CSafeLoader, text: str) -> YamlDocument:
    """Compose the single document with ``loader`` and build its values and positions."""
    root = loader.get_single_node()
    document = YamlDocument(text=text, data=None)
    if root is not None:
        document.data = _Builder(loader, document).build(root, ())
    return document


def _parse_with_libyaml(text: str) -> YamlDocument | None:
    """The document read by libyaml, or None where the pure-Python path must say why."""
    if not yaml.__with_libyaml__ or not _within_limits(text):
        return None
    loader = yaml.CSafeLoader(text)
    try:
        return _read_document(loader, text)
    except Exception:  # the pure-Python parser reports it, with its position
        return None
    finally:
        loader.dispose()


def _within_limits(text: str) -> bool:
    """Whether the events stay within MAX_DEPTH and MAX_NODES (libyaml's parser does not
    recurse; its composer does, so this runs first)."""
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                nodes += 1
                if depth > MAX_DEPTH:
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.NodeEvent):  # scalars and aliases
                nodes += 1
            if nodes > MAX_NODES:
                return False
    except Exception:
        return False
    return True


def _too_large(size: int) -> str:
    return (
        f"the file is {size / 1024 / 1024:.1f} MB; workflow files are limited to "
        f"{MAX_FILE_BYTES // 1024 // 1024} MB: split it or move large text out of it"
    )


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than MAX_DEPTH (it recurses)
    and more than MAX_NODES values (each costs time in the pure-Python parser)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH:
                self._refuse(f"nesting deeper than {MAX_DEPTH} levels is not supported")
            if self._nodes > MAX_NODES:
                self._refuse(
                    f"the file holds more than {MAX_NODES} values, the limit for a workflow"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _refuse(self, problem: str) -> NoReturn:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        raise yaml.composer.ComposerError(None, None, problem, mark)


class _AliasBomb(Exception):
    pass


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording positions."""

    def __init__(self, loader: yaml.SafeLoader | yaml.CSafeLoader, document: YamlDocument) -> None:
        self.loader = loader
        self.document = document
        self.seen: set[int] = set()
        self.alias_nodes = 0

    def build(self, node: yaml.Node, path: PathKey, in_alias: bool = False) -> Any:
        if id(node) in self.seen:
            in_alias = True  # the same node again: an *alias expanding
        self.seen.add(id(node))
        if in_alias:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases (*name) expand to more than {MAX_ALIAS_NODES} values; "
                    "write the repeated parts out or reuse less",
                    node.start_mark,
                )
        if len(path) > MAX_DEPTH:  # a recursive alias (&a [*a]) nests without end
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nesting deeper than {MAX_DEPTH} levels is not supported",
                node.start_mark,
            )
        self.document.values[path] = node
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, f"{_YAML}map")
            return self._mapping(node, path, in_alias)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, f"{_YAML}seq")
            return [
                self.build(item, (*path, index), in_alias) for index, item in enumerate(node.value)
            ]
        return self._scalar(node)

    def _check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            self._problem(node, _unsupported_tag(node.tag))

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.document.problems.append((node_position(node), message))

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._problem(node, _unsupported_tag(node.tag))
            return node.value
        if node.tag == f"{_YAML}timestamp":
            return node.value  # a date stays text: no field of a workflow is a date
        return self.loader.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: PathKey, in_alias: bool) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_YAML}merge":  # "<<: *defaults": explicit keys win
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        self._problem(
                            source,
                            "'<<' merges mappings only: write '<<: *name' for an &name mapping",
                        )
                        continue
                    built = self.build(source, path, in_alias)
                    for key, value in built.items():
                        merged.setdefault(key, value)
        result: dict[str, Any] = dict(merged)
        first_seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_YAML}merge":
                continue
            key = self._key(key_node)
            if key is None:
                continue
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                self._problem(
                    key_node,
                    f"duplicate key '{key}' (first given on line {line}); remove one of them",
                )
                continue
            first_seen[key] = key_node
            self.document.keys[(*path, key)] = key_node
            result[key] = self.build(value_node, (*path, key), in_alias)
        self.document.values[path] = node  # merged sources recorded themselves at this path
        return result

    def _key(self, node: yaml.Node) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self._problem(node, "a key must be a plain name, not a list or mapping")
            return None
        value = self._scalar(node)
        if isinstance(value, str):
            return value
        self._problem(
            node,
            f'key {node.value!r} is read by YAML as {_yaml_type(value)}; put it in quotes: "{node.value}"',
        )
        return None


def _unsupported_tag(tag: str) -> str:
    shown = "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag
    return f"unsupported YAML tag {shown}; remove it (workflow files hold plain values only)"


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null (nothing)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


# --- error messages ----------------------------------------------------------------

_HINTS = (
    (
        "found character '\\t' that cannot start any token",
        "tab character: YAML does not allow tabs here (indent with spaces); replace the tab with spaces",
    ),
    (
        "mapping values are not allowed here",
        "invalid YAML: unexpected ':'; if a value contains ': ', put the whole value in quotes",
    ),
    ("could not find expected ':'", "invalid YAML: a key without ':' (or a badly indented line)"),
    (
        "found undefined alias",
        "invalid YAML: *{alias} refers to no &{alias} anchor defined above it",
    ),
    (
        "found unexpected end of stream",
        "invalid YAML: the text ends inside a quoted value; close the quote",
    ),
    (
        "expected a single document",
        "the file holds more than one YAML document ('---'); keep one workflow per file",
    ),
    (
        "but found another document",
        "the file holds more than one YAML document ('---'); keep one workflow per file",
    ),
    ("expected <block end>", "invalid YAML: bad indentation; align this line with its siblings"),
    (
        "did not find expected key",
        "invalid YAML: bad indentation; align this line with its siblings",
    ),
    (
        "did not find expected '-' indicator",
        "invalid YAML: bad indentation in a list; align the '-' items",
    ),
)


def _syntax_message(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or error.context or "invalid YAML"
    full = f"{error.context or ''} {problem}"
    for needle, hint in _HINTS:
        if needle in full:
            alias = re.search(r"found undefined alias '?([^'\s]*)", full)
            return hint.format(alias=alias.group(1) if alias else "name")
    if any(own in problem for own in ("nesting deeper", "aliases (*name)", "values, the limit")):
        return problem
    return f"invalid YAML: {problem}"


def _reader_message(error: yaml.reader.ReaderError) -> str:
    character = error.character
    code = ord(character) if isinstance(character, str) else int(character)
    if code == 0:
        return "the file contains NUL bytes; it looks binary, not a YAML text file"
    return (
        f"the file contains a control character (U+{code:04X}) that YAML does not allow; "
        "remove it (is this a text file?)"
    )


def _text_position(text: str, index: int) -> Position:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return Position(line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _offset_position(lines: list[str], node: yaml.ScalarNode, offset: int) -> Position | None:
    """Find the source line and column of ``node.value[offset]``.

    The value is matched line by line against the source, which holds for
    plain, quoted, literal (``|``) and folded (``>``) scalars alike, as long as
    no escape sequence changed a line; otherwise None (caller falls back).
    """
    value: str = node.value
    start, end = node.start_mark, node.end_mark
    quoted = node.style in ("'", '"')
    cursor = 0
    for number in range(start.line, min(end.line, len(lines) - 1) + 1):
        line = lines[number]
        if node.style in ("|", ">") and number == start.line:
            continue  # the block header line ("|", ">-", ...)
        low = start.column + (1 if quoted else 0) if number == start.line else 0
        high = end.column - (1 if quoted else 0) if number == end.line else len(line)
        segment = line[low:high]
        content = segment.strip()
        if not content:
            continue
        column = low + len(segment) - len(segment.lstrip())
        found = value.find(content, cursor)
        if found < 0:
            return None
        if found <= offset < found + len(content):
            return Position(number + 1, column + offset - found + 1)
        cursor = found + len(content)
    return None
