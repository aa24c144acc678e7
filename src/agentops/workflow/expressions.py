"""The expression language of ``for_each`` and ``when``: parsed, never ``eval``ed.

Grammar (keywords are lowercase)::

    expression  := or
    or          := and ("or" and)*
    and         := not ("and" not)*
    not         := "not" not | comparison
    comparison  := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand]
    operand     := literal | "[" [operand ("," operand)* [","]] "]" | path | "(" expression ")"
    literal     := 'string' | "string" | INT | FLOAT | true | false | null
    path        := NAME ".output" step* | "inputs." NAME | "item" step*
                 | "item_index" | "item_number" | "item_count"
    step        := "." FIELD | "[" INT "]"

A path is written without spaces (``planner.output.sections[0].title``). A bare path is a
truth test: None, false, 0, "", [] and {} are false. ``and`` / ``or`` stop at the first
operand that decides them, so ``a.output != null and a.output.n > 3`` never orders a null.

What a path reads at run time is in ``Scope``: ``NAME.output`` is the agent's parsed value
when it has one (structured output, or a fan-out's list), else its text, else None (it did
not succeed); ``NAME.output.FIELD[0]`` is that field of the parsed value (None when absent).
Comparisons follow JSON, not Python: ``true == 1`` is false, and ordering a string against a
number (or anything against null) is an ``ExpressionError`` naming both values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from agentops.workflow.schemas import FieldPath, field_value

MAX_LENGTH = 2000  # characters: an expression is a condition, not a program
MAX_DEPTH = 32  # nested parentheses, lists and ``not``s: evaluation recurses this deep at most

ITEM = "item"
ITEM_NUMBERS = ("item_index", "item_number", "item_count")
ITEM_NAMES = (ITEM, *ITEM_NUMBERS)
_NUMBER_KINDS: dict[str, Literal["item_index", "item_number", "item_count"]] = {
    "item_index": "item_index",
    "item_number": "item_number",
    "item_count": "item_count",
}

_ORDERING = ("<", "<=", ">", ">=")
_OPERATORS = ("==", "!=", *_ORDERING, "in", "not in")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_KEYWORDS = frozenset({"and", "or", "not", "in", *_LITERALS})
# Other languages' spellings, each told what to write here instead.
_FOREIGN = {"&&": "and", "||": "or", "!": "not", "=": "=="}
_LITERAL_SPELLINGS = {
    "True": "true",
    "TRUE": "true",
    "False": "false",
    "FALSE": "false",
    "None": "null",
    "NULL": "null",
    "Null": "null",
    "nil": "null",
}

# --- tokens ----------------------------------------------------------------------------------

_STEP = r"(?:\.[A-Za-z_]\w*|\[\d+\])"
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<path>[A-Za-z_][\w\-]*"""
    + _STEP
    + r"""*)
  | (?P<string>["'])
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>()\[\],=!])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/", "0": "\0"}
_HEAD = re.compile(r"[A-Za-z_][\w\-]*")
_STEPS = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


class ExpressionError(ValueError):
    """An expression that does not parse, or that cannot be evaluated; ``offset``: where in its text."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class _Token:
    kind: str  # "number" | "path" | "string" | "op" | "keyword" | "end"
    text: str  # as written (a string: its quotes included)
    offset: int
    value: Any = None  # a number's or string's value


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise ExpressionError(f"unexpected character {text[at]!r}", at)
        kind = match.lastgroup or ""
        word = match.group()
        if kind == "string":
            token, at = _string(text, at)
            found.append(token)
            continue
        if kind == "number":
            value: Any = float(word) if any(c in word for c in ".eE") else int(word)
            found.append(_Token("number", word, at, value))
        elif kind == "path":
            head = _HEAD.match(word)
            assert head is not None  # a path starts with a name
            if head.group() in _KEYWORDS and not word[head.end() :].startswith("."):
                # ``x.output in[1, 2]``: the keyword, then a list (not a path ``in[1]``)
                word = head.group()
                found.append(_Token("keyword", word, at))
                at += len(word)
                continue
            found.append(_Token("path", word, at))
        elif kind == "op":
            if word in _FOREIGN:
                raise ExpressionError(
                    f"{word!r} is not an operator here; write {_FOREIGN[word]!r}", at
                )
            found.append(_Token("op", word, at))
        at = match.end()
    found.append(_Token("end", "", len(text)))
    return found


def _string(text: str, start: int) -> tuple[_Token, int]:
    quote = text[start]
    parts: list[str] = []
    at = start + 1
    while at < len(text):
        char = text[at]
        if char == quote:
            return _Token("string", text[start : at + 1], start, "".join(parts)), at + 1
        if char != "\\":
            parts.append(char)
            at += 1
            continue
        escape = text[at + 1 : at + 2]
        if escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[at + 2 : at + 6]):
            parts.append(chr(int(text[at + 2 : at + 6], 16)))
            at += 6
        elif escape in _ESCAPES:
            parts.append(_ESCAPES[escape])
            at += 2
        else:
            shown = f"\\{escape}" if escape else "\\ at the end"
            raise ExpressionError(
                f"unknown escape {shown} in a string; write \\\\ for a backslash", at
            )
    raise ExpressionError(
        f"string not closed: it opens with {quote} and has no closing {quote}", start
    )


# --- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PathNode:
    """A path: ``planner.output.sections[0]`` (kind "agent"), ``inputs.topic`` ("input"),
    ``item.title`` ("item"), ``item_index`` / ``item_number`` / ``item_count`` (kind and name alike)."""

    kind: Literal["agent", "input", "item", "item_index", "item_number", "item_count"]
    name: str  # the agent, the input, or the item name
    fields: FieldPath  # the steps after NAME.output, or after item
    text: str  # as written
    offset: int

    @property
    def end(self) -> int:
        return self.offset + len(self.text)


@dataclass(frozen=True)
class LiteralNode:
    value: Any  # str, int, float, bool or None
    text: str  # as written
    offset: int


@dataclass(frozen=True)
class ListNode:
    items: tuple[Node, ...]
    text: str
    offset: int


@dataclass(frozen=True)
class NotNode:
    operand: Node
    offset: int


@dataclass(frozen=True)
class BoolNode:
    """``a and b and c`` (or ``or``): operands evaluated left to right until one decides."""

    operator: Literal["and", "or"]
    operands: tuple[Node, ...]
    offset: int


@dataclass(frozen=True)
class CompareNode:
    operator: str  # one of _OPERATORS
    left: Node
    right: Node
    offset: int  # of the operator


Node = Union[PathNode, LiteralNode, ListNode, NotNode, BoolNode, CompareNode]


def children(node: Node) -> tuple[Node, ...]:
    """The nodes directly under ``node``, in the order written."""
    if isinstance(node, ListNode):
        return node.items
    if isinstance(node, NotNode):
        return (node.operand,)
    if isinstance(node, BoolNode):
        return node.operands
    if isinstance(node, CompareNode):
        return (node.left, node.right)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node under it, in the order written."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


# --- parsing ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def is_word(self, word: str, ahead: int = 0) -> bool:
        token = self.tokens[min(self.at + ahead, len(self.tokens) - 1)]
        return token.kind in ("keyword", "op") and token.text == word

    def deeper(self, offset: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} levels deep", offset)

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise ExpressionError("the expression is empty", 0)
        node = self.either()
        if self.token.kind != "end":
            raise self.unexpected("an operator (and, or, ==, in, ...) or the end")
        return node

    def either(self) -> Node:
        return self.chain("or", self.both)

    def both(self) -> Node:
        return self.chain("and", self.negation)

    def chain(self, word: Literal["and", "or"], operand: Callable[[], Node]) -> Node:
        first: Node = operand()
        operands = [first]
        while self.is_word(word):
            self.take()
            operands.append(operand())
        if len(operands) == 1:
            return first
        return BoolNode(word, tuple(operands), first.offset)

    def negation(self) -> Node:
        if self.is_word("not"):
            token = self.take()
            self.deeper(token.offset)
            operand = self.negation()
            self.depth -= 1
            return NotNode(operand, token.offset)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        operator = self.operator()
        if operator is None:
            return left
        token = self.take()
        if operator == "not in":
            self.take()
        right = self.operand()
        if self.operator() is not None:
            raise ExpressionError(
                f"comparisons do not chain: join them with 'and' ({self.token.text!r} follows a comparison)",
                self.token.offset,
            )
        return CompareNode(operator, left, right, token.offset)

    def operator(self) -> str | None:
        token = self.token
        if token.kind == "op" and token.text in _OPERATORS:
            return token.text
        if self.is_word("in"):
            return "in"
        if self.is_word("not") and self.is_word("in", 1):
            return "not in"
        return None

    def operand(self) -> Node:
        token = self.token
        if token.kind in ("number", "string"):
            self.take()
            return LiteralNode(token.value, token.text, token.offset)
        if token.kind == "keyword" and token.text in _LITERALS:
            self.take()
            return LiteralNode(_LITERALS[token.text], token.text, token.offset)
        if token.kind == "path":
            self.take()
            return _path(token)
        if token.kind == "op" and token.text == "(":
            self.take()
            self.deeper(token.offset)
            inner = self.either()
            self.depth -= 1
            self.expect(")", f"')' to close the '(' at character {token.offset + 1}")
            return inner
        if token.kind == "op" and token.text == "[":
            return self.list_literal()
        raise self.unexpected("a value (a path, a string, a number, true, false, null or a list)")

    def list_literal(self) -> ListNode:
        opening = self.take()
        self.deeper(opening.offset)
        items: list[Node] = []
        while not (self.token.kind == "op" and self.token.text == "]"):
            items.append(self.operand())
            if self.token.kind == "op" and self.token.text == ",":
                self.take()
                continue
            if not (self.token.kind == "op" and self.token.text == "]"):
                raise self.unexpected(
                    f"',' or ']' to close the list at character {opening.offset + 1}"
                )
        closing = self.take()
        self.depth -= 1
        return ListNode(
            tuple(items), self.text[opening.offset : closing.offset + 1], opening.offset
        )

    def expect(self, word: str, what: str) -> None:
        if self.token.kind == "op" and self.token.text == word:
            self.take()
            return
        raise self.unexpected(what)

    def unexpected(self, wanted: str) -> ExpressionError:
        token = self.token
        found = "the end" if token.kind == "end" else repr(token.text)
        return ExpressionError(f"expected {wanted}, found {found}", token.offset)


def _path(token: _Token) -> PathNode:
    """A path token as a node, or an error saying what to write instead."""
    word = token.text
    head = _HEAD.match(word)
    assert head is not None  # a path starts with a name
    name = head.group()
    rest = word[head.end() :]
    steps: FieldPath = tuple(text if text else int(index) for text, index in _STEPS.findall(rest))
    if name == ITEM:
        return PathNode("item", name, steps, word, token.offset)
    if name in ITEM_NUMBERS:
        if steps:
            raise ExpressionError(f"{name} is a number; it has no fields", token.offset)
        return PathNode(_NUMBER_KINDS[name], name, (), word, token.offset)
    if not steps:
        if word == "inputs":
            raise ExpressionError("write inputs.NAME for an input", token.offset)
        if word in _LITERAL_SPELLINGS:
            raise ExpressionError(
                f"{word!r} is not a value here; did you mean {_LITERAL_SPELLINGS[word]}?",
                token.offset,
            )
        raise ExpressionError(
            f"{word!r} alone is not a value; write {word}.output for an agent's output, "
            f"inputs.{word} for an input, or quote it for a string ('{word}')",
            token.offset,
        )
    attribute = steps[0]
    if name == "inputs":
        if not isinstance(attribute, str):
            raise ExpressionError("write inputs.NAME for an input", token.offset)
        if len(steps) > 1:
            raise ExpressionError(
                f"inputs.{attribute} is a value given to the run; it has no fields", token.offset
            )
        return PathNode("input", attribute, (), word, token.offset)
    if attribute != "output":
        hint = f"{name}.output" + "".join(_step_text(step) for step in steps[1:])
        raise ExpressionError(
            f"{word!r} is not a path; did you mean {hint}? (an agent's answer is NAME.output)",
            token.offset,
        )
    return PathNode("agent", name, steps[1:], word, token.offset)


def _step_text(step: str | int) -> str:
    return f"[{step}]" if isinstance(step, int) else f".{step}"


def parse_expression(text: str) -> Expression:
    """``text`` parsed; raises ``ExpressionError`` (with the offset of what is wrong)."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text):,} characters long; at most {MAX_LENGTH:,} are allowed",
            MAX_LENGTH,
        )
    return Expression(text, _Parser(text).parse())


# --- evaluation ------------------------------------------------------------------------------


@dataclass(slots=True)
class ItemScope:
    """The item of a fan-out instance: its value, its place (0-based) and how many there are.
    A value, not frozen: one is made per item (see ``runtime.messages``)."""

    value: Any
    index: int
    count: int

    @property
    def number(self) -> int:
        return self.index + 1


def item_value(item: ItemScope, kind: str, fields: FieldPath = ()) -> Any:
    """What ``item...`` / ``item_index`` / ``item_number`` / ``item_count`` reads (templates too)."""
    if kind == "item_index":
        return item.index
    if kind == "item_number":
        return item.number
    if kind == "item_count":
        return item.count
    return field_value(item.value, fields)


@dataclass(frozen=True)
class Scope:
    """What an expression reads: upstream answers, the run's inputs, and in a fan-out the item."""

    outputs: Mapping[str, str]  # text output of each upstream agent that succeeded
    values: Mapping[
        str, Any
    ]  # parsed value of those with one (structured output, a fan-out's list)
    inputs: Mapping[str, Any]
    item: ItemScope | None = None


@dataclass(frozen=True)
class Expression:
    text: str
    root: Node = field(repr=False)

    def agents(self) -> frozenset[str]:
        """The agents whose output it reads."""
        return frozenset(path.name for path in self.paths() if path.kind == "agent")

    def paths(self) -> tuple[PathNode, ...]:
        """Every path, in the order written."""
        return tuple(node for node in walk(self.root) if isinstance(node, PathNode))

    def nodes(self) -> Iterator[Node]:
        return walk(self.root)

    def evaluate(self, scope: Scope) -> Any:
        """The value; raises ``ExpressionError`` for an ordering or ``in`` it cannot do."""
        return _evaluate(self.root, scope)

    def holds(self, scope: Scope) -> bool:
        return truthy(self.evaluate(scope))

    def observed(self, scope: Scope) -> dict[str, Any]:
        """Each path as written -> its value, for the record of a decision (never raises)."""
        seen: dict[str, Any] = {}
        for path in self.paths():
            if path.text not in seen:
                try:
                    seen[path.text] = _read(path, scope)
                except ExpressionError:
                    seen[path.text] = None
        return seen


def truthy(value: Any) -> bool:
    """None, false, 0, "", [] and {} are false; anything else is true."""
    return bool(value)


def _read(path: PathNode, scope: Scope) -> Any:
    if path.kind == "agent":
        if path.fields:
            return field_value(scope.values.get(path.name), path.fields)
        if path.name in scope.values:
            return scope.values[path.name]
        return scope.outputs.get(path.name)
    if path.kind == "input":
        return scope.inputs.get(path.name)
    if scope.item is None:
        raise ExpressionError(f"{path.text} is only defined in an agent with for_each", path.offset)
    return item_value(scope.item, path.kind, path.fields)


def _evaluate(node: Node, scope: Scope) -> Any:
    if isinstance(node, PathNode):
        return _read(node, scope)
    if isinstance(node, LiteralNode):
        return node.value
    if isinstance(node, ListNode):
        return [_evaluate(item, scope) for item in node.items]
    if isinstance(node, NotNode):
        return not truthy(_evaluate(node.operand, scope))
    if isinstance(node, BoolNode):
        deciding = node.operator == "or"  # the truth value that settles the chain at once
        for operand in node.operands:
            if truthy(_evaluate(operand, scope)) is deciding:
                return deciding
        return not deciding
    return compare(
        node.operator, _evaluate(node.left, scope), _evaluate(node.right, scope), node.offset
    )


def compare(operator: str, left: Any, right: Any, offset: int | None = None) -> bool:
    """``left OPERATOR right`` with JSON's meaning; ``==`` / ``!=`` never raise."""
    if operator == "==":
        return equal(left, right)
    if operator == "!=":
        return not equal(left, right)
    if operator in ("in", "not in"):
        return _contains(left, right, offset) is (operator == "in")
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        raise ExpressionError(
            f"cannot order {show(left)} ({kind_of(left)}) {operator} {show(right)} ({kind_of(right)}); "
            "only two numbers or two strings can be ordered",
            offset,
        )
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def _contains(left: Any, right: Any, offset: int | None) -> bool:
    if isinstance(right, list):
        return any(equal(left, element) for element in right)
    if isinstance(right, dict):
        if not isinstance(left, str):
            raise ExpressionError(
                f"'in' an object looks for a key, which is a string, not {show(left)} ({kind_of(left)})",
                offset,
            )
        return left in right
    if isinstance(right, str):
        if not isinstance(left, str):
            raise ExpressionError(
                f"'in' a string looks for a substring, not {show(left)} ({kind_of(left)})", offset
            )
        return left in right
    raise ExpressionError(
        f"'in' needs a list, a string or an object on its right, not {show(right)} ({kind_of(right)})",
        offset,
    )


def equal(left: Any, right: Any) -> bool:
    """JSON equality: a boolean is not a number (``true != 1``); 1 == 1.0; lists and objects deeply.
    Iterative: an answer nested thousands deep compares without a RecursionError."""
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                return False
            pending.extend((a[key], b[key]) for key in a)
        elif _is_number(a) and _is_number(b):
            if a != b:
                return False
        elif type(a) is not type(b) or a != b:
            return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    """A value's JSON type, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    """A value as the expression language writes it, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "ITEM_NAMES",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "BoolNode",
    "CompareNode",
    "Expression",
    "ExpressionError",
    "ItemScope",
    "ListNode",
    "LiteralNode",
    "Node",
    "NotNode",
    "PathNode",
    "Scope",
    "children",
    "compare",
    "equal",
    "item_value",
    "kind_of",
    "parse_expression",
    "show",
    "truthy",
    "walk",
]
