"""Load-time checks of fan-outs (``for_each``) and routing (``when``): each rule fails with its
message at its file:line:column, and the issue's two example workflows load clean."""

from __future__ import annotations

from pathlib import Path

import pytest

import agentops
from agentops.errors import WorkflowError
from agentops.workflow.graph import AllOf, Ref, WorkflowGraph
from agentops.workflow.loader import check_workflow, validate_workflow
from agentops.workflow.spec import Agent, OutputSpec, Workflow
from tests.support.spec import load, only_problem, problems

ORCHESTRATOR_WORKERS = """\
name: orchestrator_workers
inputs:
  topic: chips
agents:
  - name: planner
    model: gpt-4o-mini
    output:
      schema:
        type: object
        properties:
          sections: {type: array, items: {type: object, properties: {title: {type: string}}, required: [title]}}
        required: [sections]
    task: "Outline a report on {{ inputs.topic }}."
  - name: writer
    model: gpt-4o-mini
    for_each: planner.output.sections        # run once per item; implies depends_on: planner
    max_items: 50                            # default 100; more items fail the agent, naming both numbers
    task: "Write the section '{{ item.title }}' ({{ item_index }} of {{ item_count }})."
  - name: editor
    model: gpt-4o-mini
    depends_on: writer
    task: "Join the sections in order: {{ writer.output }}"    # a JSON list, in item order
"""

ROUTING = """\
name: routing
inputs:
  ticket: "The export button crashes the app"
agents:
  - name: triage
    model: gpt-4o-mini
    output: {schema: {type: object, properties: {label: {enum: [bug, feature, question]}}, required: [label]}}
    task: "Classify: {{ inputs.ticket }}"
  - name: fix_bug
    model: gpt-4o-mini
    depends_on: triage
    when: triage.output.label == 'bug'       # runs only if this holds; otherwise skipped with the reason
    task: "Propose a fix for: {{ inputs.ticket }}"
  - name: plan_feature
    model: gpt-4o-mini
    depends_on: triage
    when: triage.output.label == 'feature'
    task: "Plan the feature: {{ inputs.ticket }}"
  - name: reply
    model: gpt-4o-mini
    depends_on: {any: [fix_bug, plan_feature]}
    task: "Reply to the user with {{ fix_bug.output }}{{ plan_feature.output }}"
"""

# Upstream agents the cases below read: a planner with a list, a triage with an enum, a critic
# answering in text. Line 23 is the first line under "- name: writer" (see ``writer``).
HEADER = """\
name: x
inputs:
  topic: chips
agents:
  - name: planner
    model: m
    output:
      schema:
        type: object
        properties:
          title: {type: string}
          count: {type: integer}
          sections: {type: array, items: {type: object, properties: {title: {type: string}}, required: [title]}}
        required: [sections]
    task: plan
  - name: triage
    model: m
    output: {schema: {type: object, properties: {label: {enum: [bug, feature, question]}, score: {type: integer}}}}
    task: t
  - {name: critic, model: m, task: t}
"""


def writer(body: str) -> str:
    """HEADER plus one more agent, ``writer``, with ``body`` indented under it (from line 23)."""
    return (
        HEADER
        + "  - name: writer\n    model: m\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
    )


def test_the_two_example_workflows_of_the_issue_load_clean(tmp_path: Path) -> None:
    for name, text in (("orchestrator_workers", ORCHESTRATOR_WORKERS), ("routing", ROUTING)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        loaded = agentops.load_workflow(path)
        assert loaded.workflow.name == name
        assert check_workflow(loaded.workflow) == []  # the Python path agrees
    graph = WorkflowGraph(agentops.load_workflow(tmp_path / "orchestrator_workers.yaml").workflow)
    assert graph.conditions["writer"] == Ref("planner")  # implied by for_each


def test_a_clean_fan_out_with_when_refs_and_nested_fan_outs_loads() -> None:
    text = writer(
        "depends_on: triage\n"
        "for_each: planner.output.sections\n"
        "when: triage.output.label in ['bug', 'feature'] and triage.output.score >= 3 or triage.output.label == null\n"
        "output: {schema: {$defs: {Part: {type: object, properties: {body: {type: string}}}}, type: object, properties: {parts: {type: array, items: {$ref: '#/$defs/Part'}}}}}\n"
        "task: '{{ item.title }} {{ item }} {{ item_number }}/{{ item_count }} of {{ planner.output.count }}'"
    ) + (
        "  - name: polisher\n"
        "    model: m\n"
        "    for_each: writer.output\n"  # a fan-out's output is a list
        "    when: writer.output[0].parts[0].body != 'skip' and critic.output == 'go'\n"
        "    depends_on: critic\n"
        "    task: '{{ item.parts[0].body }} {{ writer.output[1].parts }}'\n"
    )
    workflow = load(text).workflow
    assert WorkflowGraph(workflow).conditions["polisher"] == AllOf((Ref("critic"), Ref("writer")))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "depends_on: triage\nwhen: triage.output.label = 'bug'",
            "flow.yaml:24:31: agent 'writer': when: '=' is not an operator here; write '=='",
        ),
        (
            'depends_on: triage\nwhen: "triage.output.label =="',
            # the end of the text: its last character
            "flow.yaml:24:33: agent 'writer': when: expected a value (a path, a string, a number, "
            "true, false, null or a list), found the end",
        ),
        (
            "for_each: (planner.output.sections",
            "flow.yaml:23:38: agent 'writer': for_each: expected ')' to close the '(' at character 1, "
            "found the end",
        ),
    ],
)
def test_syntax_errors_point_into_the_expression(body: str, message: str) -> None:
    assert only_problem(writer(body + "\ntask: t")) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "depends_on: triage\nwhen: triag.output.label == 'bug'",
            "flow.yaml:24:11: agent 'writer': when refers to unknown agent 'triag' in "
            "triag.output.label; did you mean 'triage'?",
        ),
        (
            "for_each: planer.output.sections",
            "flow.yaml:23:15: agent 'writer': for_each refers to unknown agent 'planer' in "
            "planer.output.sections; did you mean 'planner'?",
        ),
        (
            "when: inputs.topc == 'x'",
            "flow.yaml:23:11: agent 'writer': when refers to undeclared input 'topc' in inputs.topc; "
            "did you mean 'topic'?",
        ),
        (
            "depends_on: critic\nwhen: triage.output.label == 'bug'",
            "flow.yaml:24:11: agent 'writer': when reads triage.output.label, but 'triage' is not in "
            "its depends_on; add it there so that it runs first",
        ),
    ],
)
def test_unknown_agents_inputs_and_agents_not_depended_on(body: str, message: str) -> None:
    assert only_problem(writer(body + "\ntask: t")) == message


def test_for_each_agent_is_an_implied_dependency_for_when_and_templates() -> None:
    text = writer(
        "for_each: planner.output.sections\n"
        "when: planner.output.count > 2\n"
        "task: '{{ planner.output.count }} {{ item.title }}'"
    )
    assert load(text).workflow.agent("writer").depends_on is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "for_each: planner.output.title",
            "flow.yaml:23:15: agent 'writer': for_each reads planner.output.title, which is a string, "
            "not an array; for_each needs a list; did you mean planner.output.sections?",
        ),
        (
            "for_each: planner.output",
            "flow.yaml:23:15: agent 'writer': for_each reads planner.output, which is an object, not an "
            "array; for_each needs a list; did you mean planner.output.sections?",
        ),
        (
            "for_each: critic.output",
            "flow.yaml:23:15: agent 'writer': for_each reads critic.output, but 'critic' has no output "
            "schema, so its answer is text, not a list; add output: {schema: ...} to 'critic' with an "
            "array field and name it here",
        ),
        (
            "for_each: critic.output.items",
            "flow.yaml:23:15: agent 'writer': for_each reads critic.output.items, but 'critic' has no "
            "output schema, so its answer has no fields; add output: {schema: ...} to 'critic'",
        ),
        (
            "for_each: planner.output.sectons",
            "flow.yaml:23:15: agent 'writer': for_each reads planner.output.sectons, but the output "
            "schema of 'planner' has no field 'sectons'; did you mean 'sections'?",
        ),
        (
            "for_each: planner.output.count > 3",
            "flow.yaml:23:15: agent 'writer': for_each takes a path to a list in an upstream agent's "
            "output, like planner.output.sections, not a comparison, a condition or a literal",
        ),
        (
            "for_each: inputs.topic",
            "flow.yaml:23:15: agent 'writer': for_each takes a list from an upstream agent's output, "
            "like planner.output.sections; inputs.topic is one value given to the run",
        ),
        (
            "for_each: item.sections",
            "flow.yaml:23:15: agent 'writer': for_each cannot read item.sections: for_each is decided "
            "once for the whole agent, not per item (the item is for its task and system prompt)",
        ),
    ],
)
def test_for_each_must_name_a_list(body: str, message: str) -> None:
    assert only_problem(writer(body + "\ntask: t")) == message


def test_item_fields_are_not_checked_again_when_the_list_is_not_one() -> None:
    text = writer("for_each: planner.output.title\ntask: '{{ item.x }}'")
    assert only_problem(text).startswith(
        "flow.yaml:23:15: agent 'writer': for_each reads planner.output.title, which is a string"
    )


def test_a_list_field_without_a_type_is_not_taken_for_a_list() -> None:
    text = HEADER.replace("count: {type: integer}", "count: {description: anything}") + (
        "  - {name: writer, model: m, for_each: planner.output.count, task: t}\n"
    )
    assert only_problem(text) == (
        "flow.yaml:21:40: agent 'writer': for_each reads planner.output.count, which the output "
        "schema of 'planner' does not declare a list; give it type: array; did you mean "
        "planner.output.sections?"
    )


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "triage.output.label == 'bgu'",
            "flow.yaml:24:34: agent 'writer': when compares triage.output.label with 'bgu', which is "
            "not one of bug, feature, question; did you mean 'bug'?",
        ),
        (
            "\"'bgu' != triage.output.label\"",
            "flow.yaml:24:12: agent 'writer': when compares triage.output.label with 'bgu', which is "
            "not one of bug, feature, question; did you mean 'bug'?",
        ),
        (
            "triage.output.label in ['bug', 'featur']",
            "flow.yaml:24:42: agent 'writer': when compares triage.output.label with 'featur', which "
            "is not one of bug, feature, question; did you mean 'feature'?",
        ),
        (
            "triage.output.score == 'high'",
            "flow.yaml:24:34: agent 'writer': when compares triage.output.score (an integer) with "
            "'high' (a string); they are never equal",
        ),
        (
            "triage.output.score > '3'",
            "flow.yaml:24:33: agent 'writer': when compares triage.output.score (an integer) with '3' "
            "(a string); they cannot be ordered",
        ),
        (
            "triage.output.label == 3",
            "flow.yaml:24:34: agent 'writer': when compares triage.output.label with 3, which is not "
            "one of bug, feature, question",
        ),
    ],
)
def test_literals_a_field_cannot_hold(when: str, message: str) -> None:
    assert only_problem(writer(f"depends_on: triage\nwhen: {when}\ntask: t")) == message


def test_literals_a_field_can_hold_and_null_guards_pass() -> None:
    when = (
        "triage.output.label != null and triage.output.score >= 2.5 and triage.output.score != 3 "
        "and not (triage.output.label not in ['bug', 'question'])"
    )
    load(writer(f"depends_on: triage\nwhen: {when}\ntask: t"))


def test_a_const_field_and_a_nullable_type() -> None:
    text = HEADER.replace(
        "score: {type: integer}", "score: {type: [integer, 'null']}, kind: {const: ticket}"
    ) + (
        "  - {name: writer, model: m, depends_on: triage, when: \"triage.output.kind == 'tiket' or triage.output.score == true\", task: t}\n"
    )
    assert problems(text) == [
        "flow.yaml:21:79: agent 'writer': when compares triage.output.kind with 'tiket', which is "
        "not one of ticket; did you mean 'ticket'?",
        "flow.yaml:21:113: agent 'writer': when compares triage.output.score (an integer or null) "
        "with true (a boolean); they are never equal",
    ]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "critic.output.verdict == 'ok'",
            "flow.yaml:24:11: agent 'writer': when reads critic.output.verdict, but 'critic' has no "
            "output schema, so its answer has no fields; add output: {schema: ...} to 'critic'",
        ),
        (
            "critic.output",
            "flow.yaml:24:11: agent 'writer': when reads critic.output, the text of an agent without "
            "an output schema, which can only be compared with ==, !=, in or not in (e.g. "
            "critic.output == 'yes'); add output: {schema: ...} to 'critic' to test a field",
        ),
        (
            "critic.output > 'm'",
            "flow.yaml:24:11: agent 'writer': when reads critic.output, the text of an agent without "
            "an output schema, which can only be compared with ==, !=, in or not in (e.g. "
            "critic.output == 'yes'); add output: {schema: ...} to 'critic' to test a field",
        ),
    ],
)
def test_an_agent_without_a_schema_is_only_compared_whole(when: str, message: str) -> None:
    assert only_problem(writer(f"depends_on: critic\nwhen: {when}\ntask: t")) == message


def test_whole_text_tests_are_allowed() -> None:
    when = "critic.output == 'yes' or critic.output != 'no' or 'ok' in critic.output or critic.output not in ['x']"
    load(writer(f'depends_on: critic\nwhen: "{when}"\ntask: t'))


def test_item_outside_a_fan_out_and_in_when() -> None:
    assert problems(
        writer("system: '{{ item_index }}'\ntask: '{{ item.title }} {{ item_count }}'")
    ) == [
        "flow.yaml:23:14: agent 'writer': system uses {{ item_index }}, but only an agent with "
        "for_each has an item; add for_each: AGENT.output.LIST to run it once per item of that list",
        "flow.yaml:24:12: agent 'writer': task uses {{ item.title }}, but only an agent with "
        "for_each has an item; add for_each: AGENT.output.LIST to run it once per item of that list",
        "flow.yaml:24:29: agent 'writer': task uses {{ item_count }}, but only an agent with "
        "for_each has an item; add for_each: AGENT.output.LIST to run it once per item of that list",
    ]
    assert only_problem(
        writer("for_each: planner.output.sections\nwhen: item_index < 3\ntask: t")
    ) == (
        "flow.yaml:24:11: agent 'writer': when cannot read item_index: when is decided once for the "
        "whole agent, not per item (the item is for its task and system prompt)"
    )


def test_item_fields_are_checked_against_the_items_of_the_list() -> None:
    assert only_problem(
        writer("for_each: planner.output.sections\ntask: 'Write {{ item.titel }}'")
    ) == (
        "flow.yaml:24:18: agent 'writer': task uses {{ item.titel }}, an item of "
        "planner.output.sections, but the output schema of 'planner' has no field 'titel' at "
        "sections[0]; did you mean 'title'?"
    )


def test_a_fan_out_output_downstream_is_a_list_of_its_answers() -> None:
    fan_out = writer(
        "for_each: planner.output.sections\n"
        "output: {schema: {type: object, properties: {body: {type: string}}}}\n"
        "task: t"
    )
    editor = (
        "  - name: editor\n    model: m\n    depends_on: writer\n"
        "    task: '{{ writer.output[0].bdy }} {{ writer.output.body }} {{ writer.output[2].body }}'\n"
        "    when: writer.output[0].bdy == 'x'\n"
    )
    assert problems(fan_out + editor) == [
        "flow.yaml:29:12: agent 'editor': task uses {{ writer.output[0].bdy }}, but the output of "
        "'writer' (a fan-out: the list of its items' answers) has no field 'bdy' at [0]; did you mean 'body'?",
        "flow.yaml:29:39: agent 'editor': task uses {{ writer.output.body }}, but the output of "
        "'writer' (a fan-out: the list of its items' answers) has no field 'body' (it is an array, "
        "not an object)",
        "flow.yaml:30:11: agent 'editor': when reads writer.output[0].bdy, but the output of 'writer' "
        "(a fan-out: the list of its items' answers) has no field 'bdy' at [0]; did you mean 'body'?",
    ]
    text_fan_out = writer("for_each: planner.output.sections\ntask: t")
    text_editor = "  - {name: editor, model: m, depends_on: writer, task: '{{ writer.output[0] }} {{ writer.output[0].x }}'}\n"
    assert only_problem(text_fan_out + text_editor) == (
        "flow.yaml:25:80: agent 'editor': task uses {{ writer.output[0].x }}, but the output of "
        "'writer' (a fan-out: the list of its items' answers) has no field 'x' at [0] (it is a "
        "string, not an object)"
    )


def test_max_items_and_on_item_error_only_with_for_each() -> None:
    assert problems(writer("max_items: 5\non_item_error: continue\ntask: t")) == [
        "flow.yaml:23:5: agent 'writer': max_items is only with for_each (it caps the items of a "
        "fan-out); remove it, or add for_each: AGENT.output.LIST",
        "flow.yaml:24:5: agent 'writer': on_item_error is only with for_each (it says what a failed "
        "item of a fan-out does); remove it, or add for_each: AGENT.output.LIST",
    ]
    # Workflows built in Python: an explicit on_item_error counts, the default does not
    agents = [
        Agent(name="a", model="m", task="t"),
        Agent(name="b", model="m", task="t", on_item_error="fail"),
    ]
    assert check_workflow(Workflow(name="w", agents=agents)) == [
        (
            ("agents", 1, "on_item_error"),
            "agent 'b': on_item_error is only with for_each (it says what a failed item of a fan-out "
            "does); remove it, or add for_each: AGENT.output.LIST",
        )
    ]


def test_for_each_takes_part_in_cycle_detection() -> None:
    assert only_problem(
        writer("output: {schema: {type: array}}\nfor_each: writer.output\ntask: t")
    ) == (
        "flow.yaml:24:15: agent 'writer': for_each reads its own output; a fan-out's list comes "
        "from an upstream agent"
    )
    text = HEADER + (
        "  - {name: a, model: m, task: t, depends_on: c, output: {schema: {type: array}}}\n"
        "  - {name: b, model: m, task: t, for_each: a.output}\n"
        "  - {name: c, model: m, task: t, depends_on: b}\n"
    )
    assert only_problem(text) == (
        "flow.yaml:21:46: dependency cycle a → c → b → a (each agent depends on the next; for_each "
        "depends on the agent of its list); remove one of these dependencies"
    )
    through_for_each = HEADER + (
        "  - {name: a, model: m, task: t, output: {schema: {type: array}}, depends_on: b}\n"
        "  - {name: b, model: m, task: t, for_each: a.output}\n"
    )
    assert only_problem(through_for_each) == (
        "flow.yaml:21:79: dependency cycle a → b → a (each agent depends on the next; for_each "
        "depends on the agent of its list); remove one of these dependencies"
    )


def test_item_names_are_reserved_for_agents() -> None:
    assert only_problem(HEADER + "  - {name: item_count, model: m, task: t}\n") == (
        "flow.yaml:21:12: agent name 'item_count' is reserved for {{ item_count }} in a fan-out; "
        "rename the agent"
    )


def test_workflows_built_in_python_are_checked_alike() -> None:
    triage = Agent(
        name="triage",
        model="m",
        task="t",
        output=OutputSpec.model_validate(
            {"schema": {"type": "object", "properties": {"label": {"enum": ["bug"]}}}}
        ),
    )
    routed = Agent(
        name="fix", model="m", task="t", depends_on="triage", when="triage.output.label == 'bgu'"
    )
    with pytest.raises(WorkflowError) as caught:
        validate_workflow(Workflow(name="w", agents=[triage, routed]))
    assert str(caught.value) == (
        "<workflow>:0:0: agent 'fix': when compares triage.output.label with 'bgu', which is not one "
        "of bug; did you mean 'bug'?"
    )


def test_a_type_error_elsewhere_does_not_hide_expression_problems() -> None:
    text = writer(
        "depends_on: triage\nwhen: triage.output.label == 'bgu'\nmax_items: lots\ntask: t"
    )
    found = problems(text)
    assert any("max_items" in line for line in found)
    assert (
        "flow.yaml:24:34: agent 'writer': when compares triage.output.label with 'bgu', which is not "
        "one of bug, feature, question; did you mean 'bug'?"
    ) in found
