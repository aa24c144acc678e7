"""Dependency conditions, cycles and the Mermaid / DOT rendering of the graph."""

from __future__ import annotations

import pytest

from agentops.workflow.graph import (
    AllOf,
    AnyOf,
    ConditionSyntaxError,
    Ref,
    WorkflowGraph,
    condition_holds,
    dependency_edges,
    describe_condition,
    find_cycle,
    parse_condition,
    to_dot,
    to_mermaid,
    with_sources,
)
from tests.support.spec import SKETCH_SAMPLE, load

# --- conditions ------------------------------------------------------------------------------


def test_condition_forms_mean_the_same_thing() -> None:
    expected = AllOf((Ref("a"), AnyOf((Ref("b"), Ref("c")))))
    assert parse_condition("a && (b || c)") == expected
    assert parse_condition({"all": ["a", {"any": ["b", "c"]}]}) == expected
    assert parse_condition(["a", {"any": ["b", "c"]}]) == expected
    assert parse_condition(["a", "b || c"]) == expected
    assert describe_condition(expected) == "a && (b || c)"


def test_and_binds_tighter_than_or() -> None:
    assert parse_condition("a || b && c") == AnyOf((Ref("a"), AllOf((Ref("b"), Ref("c")))))


@pytest.mark.parametrize(
    ("succeeded", "holds"),
    [({"a", "b"}, True), ({"a", "c"}, True), ({"a"}, False), ({"b", "c"}, False), (set(), False)],
)
def test_condition_holds_over_the_agents_that_succeeded(succeeded: set[str], holds: bool) -> None:
    assert condition_holds(parse_condition("a && (b || c)"), succeeded) is holds


def test_no_dependencies_always_holds() -> None:
    assert parse_condition(None) is None and parse_condition([]) is None
    assert condition_holds(None, [])


@pytest.mark.parametrize("raw", ["a && ", "(a", "a ||| b", {"all": []}, {"one": ["a"]}, 3])
def test_bad_conditions_raise_a_syntax_error(raw: object) -> None:
    with pytest.raises(ConditionSyntaxError):
        parse_condition(raw)  # type: ignore[arg-type]


def test_expression_nesting_is_bounded() -> None:
    assert parse_condition("(" * 32 + "a" + ")" * 32) == Ref("a")
    with pytest.raises(ConditionSyntaxError, match="deeper than 32"):
        parse_condition("(" * 33 + "a" + ")" * 33)


def test_dependency_edges_mark_alternatives() -> None:
    assert dependency_edges(parse_condition("a && (b || c)")) == {"a": False, "b": True, "c": True}
    assert dependency_edges(parse_condition({"any": ["a", {"all": ["b", "c"]}]})) == {
        "a": True,
        "b": True,
        "c": True,
    }
    # Required somewhere wins over optional elsewhere.
    assert dependency_edges(parse_condition("a && (a || b)")) == {"a": False, "b": True}
    assert dependency_edges(None) == {}


# --- cycles and order ---------------------------------------------------------------------------


def test_find_cycle_returns_the_path() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b", "unknown"]}) is None


def test_long_chains_do_not_exhaust_the_stack() -> None:
    chain = {f"a{i}": [f"a{i + 1}"] for i in range(20_000)}
    chain["a20000"] = ["a0"]
    cycle = find_cycle(chain)
    assert cycle is not None and len(cycle) == 20_002 and cycle[0] == cycle[-1] == "a0"
    chain["a20000"] = []
    assert find_cycle(chain) is None


def test_graph_of_a_loaded_workflow() -> None:
    graph = WorkflowGraph(load(SKETCH_SAMPLE).workflow)
    assert graph.topological_order() == ["researcher", "summarizer"]
    assert graph.sinks() == ["summarizer"]
    assert graph.find_cycle() is None


# --- fan-out: the implied dependency ----------------------------------------------------------

FAN_OUT = """\
name: fan
agents:
  - name: planner
    model: m
    output: {schema: {type: object, properties: {sections: {type: array, items: {type: string}}}}}
    task: plan
  - {name: critic, model: m, task: t}
  - name: writer
    model: m
    for_each: planner.output.sections
    task: "Write {{ item }}"
  - name: reviser
    model: m
    depends_on: critic
    for_each: planner.output.sections
    when: critic.output == 'redo'
    task: "Revise {{ item }}"
  - name: editor
    model: m
    depends_on: [writer, reviser]
    task: "{{ writer.output }}"
"""


def test_for_each_implies_a_dependency_on_the_agent_of_its_list() -> None:
    graph = WorkflowGraph(load(FAN_OUT).workflow)
    assert graph.conditions["writer"] == Ref("planner")
    assert graph.conditions["reviser"] == AllOf((Ref("critic"), Ref("planner")))
    assert graph.dependencies["writer"] == {"planner"}
    assert graph.dependents["planner"] == ["writer", "reviser"]
    assert graph.topological_order() == ["planner", "critic", "writer", "reviser", "editor"]


def test_a_source_already_required_is_not_added_again_and_an_alternative_becomes_required() -> None:
    assert with_sources(Ref("p"), ["p"]) == Ref("p")
    assert with_sources(parse_condition("p && q"), ["p"]) == parse_condition("p && q")
    assert with_sources(parse_condition("a && b"), ["p"]) == AllOf((Ref("a"), Ref("b"), Ref("p")))
    # under any: the fan-out would otherwise start without its list
    either = parse_condition("p || q")
    assert with_sources(either, ["p"]) == AllOf((either, Ref("p")))
    assert with_sources(None, []) is None
    assert with_sources(None, ["p"]) == Ref("p")


# --- rendering ------------------------------------------------------------------------------------

OR_FLOW = """\
name: brief
agents:
  - {name: web, model: gpt-4o-mini, task: t}
  - {name: archive, model: gpt-4o-mini, task: t}
  - {name: checker, model: m, task: t, depends_on: {any: [web, archive]}}
  - {name: writer, model: gpt-4o, task: t, depends_on: "checker && (web || archive)"}
"""


def test_mermaid_output() -> None:
    assert to_mermaid(WorkflowGraph(load(OR_FLOW).workflow)) == (
        "flowchart TD\n"
        "    %% workflow: brief\n"
        '    web["web<br/>gpt-4o-mini"]\n'
        '    archive["archive<br/>gpt-4o-mini"]\n'
        '    checker["checker<br/>m"]\n'
        '    writer["writer<br/>gpt-4o"]\n'
        "    web -. or .-> checker\n"
        "    archive -. or .-> checker\n"
        "    web -. or .-> writer\n"
        "    archive -. or .-> writer\n"
        "    checker --> writer\n"
    )


def test_dot_output() -> None:
    assert to_dot(WorkflowGraph(load(OR_FLOW).workflow)) == (
        'digraph "brief" {\n'
        "    rankdir=TB;\n"
        '    node [shape=box, style=rounded, fontname="Helvetica"];\n'
        '    "web" [label="web\\ngpt-4o-mini"];\n'
        '    "archive" [label="archive\\ngpt-4o-mini"];\n'
        '    "checker" [label="checker\\nm"];\n'
        '    "writer" [label="writer\\ngpt-4o"];\n'
        '    "web" -> "checker" [style=dashed, label="or"];\n'
        '    "archive" -> "checker" [style=dashed, label="or"];\n'
        '    "web" -> "writer" [style=dashed, label="or"];\n'
        '    "archive" -> "writer" [style=dashed, label="or"];\n'
        '    "checker" -> "writer";\n'
        "}\n"
    )


def test_names_mermaid_cannot_take_get_safe_ids_and_labels_are_escaped() -> None:
    text = """\
        name: x
        agents:
          - {name: news-gatherer, model: 'my "quoted" <model>', task: t}
          - {name: end, model: m, task: t, depends_on: news-gatherer}
        """
    mermaid = to_mermaid(WorkflowGraph(load(text).workflow))
    assert '    n0["news-gatherer<br/>my #quot;quoted#quot; #lt;model#gt;"]' in mermaid
    assert '    n1["end<br/>m"]' in mermaid
    assert "    n0 --> n1" in mermaid
    dot = to_dot(WorkflowGraph(load(text).workflow))
    assert '"news-gatherer" [label="news-gatherer\\nmy \\"quoted\\" <model>"];' in dot
    assert '"news-gatherer" -> "end";' in dot


def test_fan_out_and_when_in_mermaid_and_dot() -> None:
    graph = WorkflowGraph(load(FAN_OUT).workflow)
    mermaid = to_mermaid(graph).splitlines()
    assert '    writer[["writer ×N<br/>m<br/>for each planner.output.sections"]]' in mermaid
    assert (
        '    reviser[["reviser ×N<br/>m<br/>for each planner.output.sections'
        "<br/>when critic.output == 'redo'\"]]"
    ) in mermaid
    assert "    planner --> writer" in mermaid
    assert "    critic --> reviser" in mermaid and "    planner --> reviser" in mermaid
    dot = to_dot(graph).splitlines()
    assert (
        '    "writer" [label="writer ×N\\nm\\nfor each planner.output.sections", peripheries=2];'
    ) in dot
    assert '    "planner" -> "writer";' in dot
