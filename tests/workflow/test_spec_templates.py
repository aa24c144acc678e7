"""Prompt templates: what may be placed in a task or system prompt, and how it renders."""

from __future__ import annotations

import pytest

from agentops.runtime.prompts import CONTEXT_FOOTER, CONTEXT_HEADER, build_messages
from tests.support.spec import load, only_problem, problems

HEADER = """\
name: x
inputs:
  topic: chips
  audience:
agents:
  - {name: researcher, model: m, task: t}
  - {name: critic, model: m, task: t}
"""


def agent(body: str) -> str:
    """HEADER plus one more agent, ``body`` indented under ``- name: writer``."""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return HEADER + "  - name: writer\n    model: m\n" + lines


# --- validation ------------------------------------------------------------------------------


def test_placing_upstream_outputs_and_inputs_is_valid() -> None:
    text = agent(
        'depends_on: "researcher || critic"\n'
        'system: "Write for {{ inputs.audience }}"\n'
        "task: '{{researcher.output}} / {{ critic.output }} on {{ inputs.topic }}'"
    )
    assert load(text).workflow.agent("writer").system == "Write for {{ inputs.audience }}"


def test_output_of_an_agent_that_is_not_a_dependency() -> None:
    text = agent("depends_on: critic\ntask: 'Use {{ researcher.output }}'")
    assert only_problem(text) == (
        "flow.yaml:11:16: agent 'writer': task uses {{ researcher.output }}, but 'researcher' is not in "
        "its depends_on; add it there so that it runs first"
    )


def test_output_of_an_unknown_agent_suggests_the_closest() -> None:
    text = agent("depends_on: researcher\ntask: 'Use {{ reseacher.output }}'")
    assert only_problem(text) == (
        "flow.yaml:11:16: agent 'writer': task refers to unknown agent 'reseacher' in {{ reseacher.output }}; "
        "did you mean 'researcher'?"
    )


def test_undeclared_input_suggests_or_lists_declared_ones() -> None:
    assert only_problem(agent("task: 'On {{ inputs.topc }}'")) == (
        "flow.yaml:10:15: agent 'writer': task refers to undeclared input 'topc' in {{ inputs.topc }}; "
        "did you mean 'topic'?"
    )
    assert only_problem(agent("task: 'On {{ inputs.zzz }}'")) == (
        "flow.yaml:10:15: agent 'writer': task refers to undeclared input 'zzz' in {{ inputs.zzz }}; "
        "declared inputs: topic, audience"
    )
    no_inputs = "name: x\nagents:\n  - {name: a, model: m, task: '{{ inputs.q }}'}\n"
    assert only_problem(no_inputs).endswith("declare it under inputs:")


def test_system_prompt_is_checked_like_the_task() -> None:
    text = agent("task: t\nsystem: 'You are {{ critic.output }}'")
    assert only_problem(text) == (
        "flow.yaml:11:22: agent 'writer': system uses {{ critic.output }}, but 'critic' is not in its "
        "depends_on; add it there so that it runs first"
    )


@pytest.mark.parametrize(
    ("placeholder", "hint"),
    [
        ("{{ foo }}", ""),
        ("{{ tasks.researcher.outputs.result }}", "; did you mean {{ researcher.output }}?"),
        ("{{ inputs.parameters.topic }}", "; did you mean {{ inputs.topic }}?"),
        ("{{ input.topic }}", "; did you mean {{ inputs.topic }}?"),
        ("{{ researcher.outputs }}", "; did you mean {{ researcher.output }}?"),
        ("{{ topic }}", "; did you mean {{ inputs.topic }}?"),
        ("{{ researcher.output | upper }}", " (filters are not supported)"),
    ],
)
def test_other_placeholder_forms_are_errors_with_a_hint(placeholder: str, hint: str) -> None:
    text = agent(f"depends_on: researcher\ntask: 'x {placeholder}'")
    assert only_problem(text) == (
        f"flow.yaml:11:14: agent 'writer': task has an unsupported placeholder {placeholder}; only "
        "{{ AGENT.output }}, {{ AGENT.output.FIELD }} or {{ inputs.NAME }} are allowed" + hint
    )


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("'{% if x %}y{% endif %}'", "has '{% if x %}': Jinja tags are not supported"),
        ("'see {{ researcher.output'", "has '{{' without a closing '}}'; close the placeholder"),
        (
            "'see ${researcher.output}'",
            "has ${researcher.output}; write {{ researcher.output }} instead",
        ),
        ("'about {topic}'", "has {topic}; to insert the input write {{ inputs.topic }}"),
        (
            "'after {researcher}'",
            "has {researcher}; to insert its output write {{ researcher.output }}",
        ),
    ],
)
def test_template_syntax_from_other_tools_is_caught(task: str, message: str) -> None:
    found = only_problem(agent(f"depends_on: researcher\ntask: {task}"))
    assert found.startswith("flow.yaml:11:") and message in found, found


def test_single_braces_that_name_nothing_are_plain_text() -> None:
    text = agent("task: 'Return JSON like {name: value} or {}'")
    assert load(text).workflow.agent("writer").task.startswith("Return JSON")


def test_placeholder_position_inside_block_scalars() -> None:
    literal = agent(
        "depends_on: critic\ntask: |\n  First line.\n\n  Then {{ researcher.output }} here."
    )
    assert only_problem(literal).startswith(
        "flow.yaml:14:12: agent 'writer': task uses {{ researcher.output }}"
    )
    folded = agent("depends_on: critic\ntask: >\n  One folded\n  line with {{ inputs.nope }}.")
    assert only_problem(folded).startswith(
        "flow.yaml:13:17: agent 'writer': task refers to undeclared input"
    )
    plain = agent("task: text {{ inputs.nope }}")
    assert only_problem(plain).startswith("flow.yaml:10:16:")


def test_every_bad_placeholder_in_a_task_is_reported() -> None:
    found = problems(agent("task: '{{ a.output }} {{ b.output }} {{ inputs.c }}'"))
    assert [line.split(": ", 1)[0] for line in found] == [
        "flow.yaml:10:12",
        "flow.yaml:10:27",
        "flow.yaml:10:42",
    ]


# --- rendering (what the engine sends) ----------------------------------------------------------


def test_unplaced_upstream_outputs_go_in_a_labelled_block() -> None:
    workflow = load(
        agent("depends_on: [researcher, critic]\ntask: 'Write it. Notes: {{ critic.output }}'")
    ).workflow
    messages = build_messages(workflow.agent("writer"), {"researcher": "R!", "critic": "C!"}, {})
    assert len(messages) == 1 and messages[0].role == "user"
    assert messages[0].content == (
        f"Write it. Notes: C!\n\n{CONTEXT_HEADER}\n### researcher\nR!\n{CONTEXT_FOOTER}"
    )


def test_inputs_and_system_prompt_render() -> None:
    text = agent("system: 'For {{ inputs.audience }}'\ntask: 'About {{ inputs.topic }}'")
    workflow = load(text).workflow
    system, user = build_messages(
        workflow.agent("writer"), {}, {"topic": "chips", "audience": "CTOs"}
    )
    assert (system.role, system.content) == ("system", "For CTOs")
    assert (user.role, user.content) == ("user", "About chips")


def test_skipped_alternative_renders_empty() -> None:
    text = agent(
        'depends_on: "researcher || critic"\ntask: "A={{ researcher.output }} B={{ critic.output }}"'
    )
    workflow = load(text).workflow
    (user,) = build_messages(workflow.agent("writer"), {"critic": "ok"}, {})
    assert user.content == "A= B=ok"


def test_an_output_placed_in_the_system_prompt_is_not_repeated_in_the_block() -> None:
    workflow = load(
        "name: x\nagents:\n  - {name: a, model: m, task: t}\n  - {name: b, model: m, task: t}\n"
        "  - {name: c, model: m, depends_on: [a, b], system: 'Style guide: {{ a.output }}', task: go}\n"
    )
    system, user = build_messages(workflow.workflow.agents[2], {"a": "GUIDE-A", "b": "TEXT-B"}, {})
    assert system.content == "Style guide: GUIDE-A"
    assert CONTEXT_HEADER in user.content and "TEXT-B" in user.content
    assert "GUIDE-A" not in user.content
