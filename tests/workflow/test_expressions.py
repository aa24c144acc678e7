"""The expression language of ``for_each`` and ``when``: parsing, errors, evaluation, what it read."""

from __future__ import annotations

from typing import Any

import pytest

from agentops.workflow.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    BoolNode,
    CompareNode,
    ExpressionError,
    ItemScope,
    ListNode,
    LiteralNode,
    NotNode,
    PathNode,
    Scope,
    equal,
    parse_expression,
)
from agentops.workflow.templates import references, render

SCOPE = Scope(
    outputs={"triage": '{"label": "bug"}', "critic": "looks fine", "planner": "{...}"},
    values={
        "triage": {"label": "bug", "score": 7, "tags": ["ui", "crash"], "meta": {"team": "core"}},
        "planner": {"sections": [{"title": "Intro"}, {"title": "End"}], "empty": []},
        "writer": ["first", "second"],
    },
    inputs={"topic": "chips", "limit": 5},
)


def value(text: str, scope: Scope = SCOPE) -> Any:
    return parse_expression(text).evaluate(scope)


def error(text: str) -> tuple[str, int | None]:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    return str(caught.value), caught.value.offset


# --- parsing ---------------------------------------------------------------------------------


def test_paths_are_parsed_with_their_kind_fields_text_and_offset() -> None:
    expression = parse_expression(
        "planner.output.sections[0].title == inputs.topic or item.a[2] and item_count > item_index"
    )
    assert expression.paths() == (
        PathNode(
            "agent", "planner", ("sections", 0, "title"), "planner.output.sections[0].title", 0
        ),
        PathNode("input", "topic", (), "inputs.topic", 36),
        PathNode("item", "item", ("a", 2), "item.a[2]", 52),
        PathNode("item_count", "item_count", (), "item_count", 66),
        PathNode("item_index", "item_index", (), "item_index", 79),
    )
    assert expression.agents() == frozenset({"planner"})
    assert expression.paths()[0].end == len("planner.output.sections[0].title")


def test_precedence_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    root = parse_expression("not a.output or b.output and c.output").root
    assert isinstance(root, BoolNode) and root.operator == "or"
    assert isinstance(root.operands[0], NotNode)
    assert isinstance(root.operands[1], BoolNode) and root.operands[1].operator == "and"
    grouped = parse_expression("not (a.output or b.output)").root
    assert isinstance(grouped, NotNode) and isinstance(grouped.operand, BoolNode)


def test_chains_of_and_are_flat_so_long_ones_need_no_recursion() -> None:
    text = " and ".join(f"a{i}.output" for i in range(100))
    root = parse_expression(text).root
    assert isinstance(root, BoolNode) and len(root.operands) == 100


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("'bug'", "bug"),
        ('"bug"', "bug"),
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'a\\b\n\t\u00e9'", "a\\b\n\t\u00e9"),
        ("42", 42),
        ("-3", -3),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_literals(text: str, literal: Any) -> None:
    root = parse_expression(text).root
    assert isinstance(root, LiteralNode) and root.text == text
    assert root.value == literal and type(root.value) is type(literal)


def test_lists_hold_literals_paths_and_lists_and_may_end_with_a_comma() -> None:
    root = parse_expression("[1, 'a', inputs.topic, [true], ]").root
    assert isinstance(root, ListNode) and root.text == "[1, 'a', inputs.topic, [true], ]"
    assert value("[1, 'a', inputs.topic, [true], ]") == [1, "a", "chips", [True]]
    assert value("[]") == []


def test_not_in_is_one_operator_and_in_may_touch_a_list() -> None:
    root = parse_expression("triage.output.label not in['bug']").root
    assert isinstance(root, CompareNode) and root.operator == "not in"
    assert root.offset == len("triage.output.label ")


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "the expression is empty", 0),
        ("   ", "the expression is empty", 0),
        (
            "a.output ==",
            "expected a value (a path, a string, a number, true, false, null or a list), found the end",
            11,
        ),
        (
            "a.output b.output",
            "expected an operator (and, or, ==, in, ...) or the end, found 'b.output'",
            9,
        ),
        ("a.output = 'x'", "'=' is not an operator here; write '=='", 9),
        ("a.output && b.output", "'&&' is not an operator here; write 'and'", 9),
        ("a.output || b.output", "'||' is not an operator here; write 'or'", 9),
        ("!a.output", "'!' is not an operator here; write 'not'", 0),
        ("a.output + 1", "unexpected character '+'", 9),
        ("(a.output", "expected ')' to close the '(' at character 1, found the end", 9),
        ("a.output)", "expected an operator (and, or, ==, in, ...) or the end, found ')'", 8),
        ("[1, 2", "expected ',' or ']' to close the list at character 1, found the end", 5),
        ("[1 2]", "expected ',' or ']' to close the list at character 1, found '2'", 3),
        ("'open", "string not closed: it opens with ' and has no closing '", 0),
        ("x == 'a\\qb'", "unknown escape \\q in a string; write \\\\ for a backslash", 7),
        (
            "a.output < b.output < 3",
            "comparisons do not chain: join them with 'and' ('<' follows a comparison)",
            20,
        ),
        (
            "critic",
            "'critic' alone is not a value; write critic.output for an agent's output, inputs.critic for an input, or quote it for a string ('critic')",
            0,
        ),
        ("True", "'True' is not a value here; did you mean true?", 0),
        ("a.output == None", "'None' is not a value here; did you mean null?", 12),
        (
            "critic.outputs.x",
            "'critic.outputs.x' is not a path; did you mean critic.output.x? (an agent's answer is NAME.output)",
            0,
        ),
        ("inputs.topic.x", "inputs.topic is a value given to the run; it has no fields", 0),
        ("inputs[0]", "write inputs.NAME for an input", 0),
        ("item_count.x == 1", "item_count is a number; it has no fields", 0),
        (
            "and",
            "expected a value (a path, a string, a number, true, false, null or a list), found 'and'",
            0,
        ),
    ],
)
def test_syntax_errors_say_what_is_wrong_and_where(text: str, message: str, offset: int) -> None:
    assert error(text) == (message, offset)


def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "a.output" + ")" * (MAX_DEPTH + 1)
    assert error(deep) == (f"nested more than {MAX_DEPTH} levels deep", MAX_DEPTH)
    assert error("not " * 400 + "a.output")[0] == f"nested more than {MAX_DEPTH} levels deep"
    assert error("[" * 1000)[0] == f"nested more than {MAX_DEPTH} levels deep"
    just_enough = "(" * MAX_DEPTH + "a.output" + ")" * MAX_DEPTH
    assert parse_expression(just_enough).agents() == {"a"}


def test_length_is_capped() -> None:
    long = "a.output == '" + "x" * MAX_LENGTH + "'"
    message, offset = error(long)
    assert (
        message
        == f"the expression is {len(long):,} characters long; at most {MAX_LENGTH:,} are allowed"
    )
    assert offset == MAX_LENGTH


def test_keywords_are_not_taken_for_agent_names_but_an_agent_may_start_with_one() -> None:
    assert parse_expression("order.output and notes.output or inputs.x").agents() == {
        "order",
        "notes",
    }


# --- evaluation ------------------------------------------------------------------------------


def test_paths_read_values_outputs_inputs_and_nothing() -> None:
    assert value("triage.output") == SCOPE.values["triage"]  # parsed value first
    assert value("critic.output") == "looks fine"  # text when there is no parsed value
    assert value("writer.output") == ["first", "second"]  # a fan-out's list
    assert value("triage.output.tags[1]") == "crash"
    assert value("planner.output.sections[1].title") == "End"
    assert value("planner.output.sections[5].title") is None
    assert value("critic.output.anything") is None  # a text agent has no fields
    assert value("absent.output") is None  # did not succeed
    assert value("absent.output.x") is None
    assert value("inputs.topic") == "chips"
    assert value("inputs.nothing") is None


def test_item_paths_read_the_instance() -> None:
    scope = Scope({}, {}, {}, ItemScope({"title": "Intro", "tags": ["a", "b"]}, 2, 5))
    assert value("item", scope) == {"title": "Intro", "tags": ["a", "b"]}
    assert value("item.title", scope) == "Intro"
    assert value("item.tags[1]", scope) == "b"
    assert value("item.missing", scope) is None
    assert [value(name, scope) for name in ("item_index", "item_number", "item_count")] == [2, 3, 5]
    with pytest.raises(
        ExpressionError, match=r"item.title is only defined in an agent with for_each"
    ):
        value("item.title")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("triage.output.label == 'bug'", True),
        ("triage.output.label != 'bug'", False),
        ("triage.output.score == 7.0", True),
        ("triage.output.score > 6", True),
        ("triage.output.score >= 7", True),
        ("triage.output.score < 7", False),
        ("triage.output.score <= 6.5", False),
        ("'abc' < 'abd'", True),
        ("triage.output.label in ['bug', 'feature']", True),
        ("triage.output.label not in ['bug', 'feature']", False),
        ("'cra' in triage.output.tags[1]", True),  # substring
        ("'team' in triage.output.meta", True),  # key
        ("'ui' in triage.output.tags", True),
        ("inputs.limit in [5]", True),
        ("true == 1", False),  # JSON: a boolean is not a number
        ("false == 0", False),
        ("1 == 1.0", True),
        ("null == absent.output", True),
        ("null == 0", False),
        ("'5' == 5", False),
        ("[1, [2, 'x']] == [1, [2, 'x']]", True),
        ("triage.output.meta == triage.output.meta", True),
        ("planner.output.sections", True),  # truth tests
        ("planner.output.empty", False),
        ("absent.output", False),
        ("not absent.output", True),
        ("triage.output.score and critic.output", True),
        ("absent.output or triage.output.label == 'bug'", True),
        ("absent.output and absent.output", False),
        ("0 or '' or [] or null or false", False),
        ("not (triage.output.label == 'bug' and triage.output.score < 5)", True),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    expression = parse_expression(text)
    assert expression.holds(SCOPE) is expected
    if isinstance(expression.root, (CompareNode, BoolNode, NotNode)):
        assert expression.evaluate(SCOPE) is expected  # comparisons and connectives give booleans


def test_and_or_stop_at_the_operand_that_decides() -> None:
    guarded = "absent.output != null and absent.output.n > 3"
    assert parse_expression(guarded).holds(SCOPE) is False  # the ordering of null is never reached
    assert parse_expression("triage.output or absent.output.n > 3").holds(SCOPE) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "absent.output.n > 3",
            "cannot order null (null) > 3 (a number); only two numbers or two strings can be ordered",
        ),
        (
            "triage.output.label < 3",
            "cannot order 'bug' (a string) < 3 (a number); only two numbers or two strings can be ordered",
        ),
        (
            "true >= 0",
            "cannot order true (a boolean) >= 0 (a number); only two numbers or two strings can be ordered",
        ),
        (
            "[1] < [2]",
            "cannot order [1] (a list) < [2] (a list); only two numbers or two strings can be ordered",
        ),
        (
            "'x' in absent.output",
            "'in' needs a list, a string or an object on its right, not null (null)",
        ),
        (
            "'x' in triage.output.score",
            "'in' needs a list, a string or an object on its right, not 7 (a number)",
        ),
        ("1 in 'abc'", "'in' a string looks for a substring, not 1 (a number)"),
        (
            "1 not in triage.output.meta",
            "'in' an object looks for a key, which is a string, not 1 (a number)",
        ),
    ],
)
def test_what_cannot_be_compared_is_an_error_naming_both_values(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        value(text)
    assert str(caught.value) == message
    root = parse_expression(text).root
    assert isinstance(root, CompareNode) and caught.value.offset == root.offset


def test_equality_never_raises_even_on_values_nested_very_deep() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    scope = Scope({}, {"a": deep, "b": deep}, {})
    assert value("a.output == b.output", scope) is True
    assert value("a.output != [1]", scope) is True
    assert equal({"x": [1, 2.0]}, {"x": [1.0, 2]}) and not equal({"x": 1}, {"y": 1})


def test_observed_records_each_path_once_as_written() -> None:
    expression = parse_expression(
        "triage.output.label == 'bug' and absent.output.n > 3 or triage.output.label in inputs.topic"
    )
    assert expression.observed(SCOPE) == {
        "triage.output.label": "bug",
        "absent.output.n": None,
        "inputs.topic": "chips",
    }
    item = parse_expression("item.title == 'x' or item_number > 1")
    assert item.observed(Scope({}, {}, {}, ItemScope({"title": "T"}, 0, 1))) == {
        "item.title": "T",
        "item_number": 1,
    }
    assert item.observed(SCOPE) == {"item.title": None, "item_number": None}  # never raises


def test_an_expression_keeps_its_text() -> None:
    assert parse_expression(" a.output ").text == " a.output "


# --- the item in templates -------------------------------------------------------------------


def test_templates_render_the_item_like_an_output() -> None:
    task = (
        "{{ item }} | {{item.title}} | {{ item.tags[1] }} | {{ item.none }} | "
        "{{ item_index }}/{{ item_number }}/{{ item_count }} | {{ inputs.topic }}"
    )
    item = ItemScope({"title": "Intro", "tags": ["a", {"b": 1}]}, 0, 3)
    assert render(task, {}, {"topic": "chips"}, item=item) == (
        '{"title": "Intro", "tags": ["a", {"b": 1}]} | Intro | {"b": 1} |  | 0/1/3 | chips'
    )
    assert render("{{ item }}", {}, {}, item=ItemScope("plain text", 4, 9)) == "plain text"
    # outside a fan-out the placeholders stay as written (the load-time checks refuse them)
    assert (
        render("{{ item.title }} {{ item_count }}", {}, {}) == "{{ item.title }} {{ item_count }}"
    )


def test_references_classify_item_placeholders() -> None:
    found = references(
        "{{ item }} {{ item.a[0] }} {{ item_count }} {{ item_count.x }} {{ item.output }}"
    )
    assert [(r.kind, r.name, r.fields) for r in found] == [
        ("item", "item", ()),
        ("item", "item", ("a", 0)),
        ("item", "item_count", ()),
        ("invalid", "item_count.x", ()),
        ("item", "item", ("output",)),  # the item's field 'output', not an agent named item
    ]
