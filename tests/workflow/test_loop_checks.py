"""Load-time checks of loops (``loops:``): each rule fails with its message at its
file:line:column; a workflow made in Python is checked the same way."""

from __future__ import annotations

import pytest

from agentops.workflow.loader import check_workflow
from agentops.workflow.spec import Agent, LoopSpec, Workflow
from tests.support.spec import load, only_problem, problems

AGENTS = """\
name: flow
agents:
  - name: draft
    model: m
    task: "Write. {{ critic.previous.output.feedback }}"
  - name: critic
    model: m
    depends_on: draft
    output: {schema: {type: object, properties: {approved: {type: boolean}, feedback: {type: string}}, required: [approved, feedback]}}
    task: "Review {{ draft.output }}"
  - name: publish
    model: m
    depends_on: critic
    task: "Publish {{ critic.output.feedback }}"
loops:
"""


def loop(body: str) -> str:
    return AGENTS + "  - " + body.replace("\n", "\n    ") + "\n"


def test_the_refine_loop_loads_with_its_defaults() -> None:
    workflow = load(
        loop(
            "name: refine\nagents: [draft, critic]\nuntil: critic.output.approved\nmax_iterations: 3"
        )
    ).workflow
    (refine,) = workflow.loops
    assert (refine.name, refine.agents, refine.max_iterations) == ("refine", ["draft", "critic"], 3)
    assert (refine.until, refine.on_max_iterations) == ("critic.output.approved", "continue")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "name: refine\nagents: [draft, critic]",
            "flow.yaml:16:5: loop 'refine' is missing 'max_iterations'; add max_iterations: "
            "<the most iterations, 1 to 100>",
        ),
        (
            "name: refine\nagents: [draft, critic]\nmax_iterations: 101",
            "flow.yaml:18:21: loop 'refine': max_iterations must be at most 100 (got 101)",
        ),
        (
            "name: refine\nagents: [draft, critic]\nmax_iterations: 0",
            "flow.yaml:18:21: loop 'refine': max_iterations must be at least 1 (got 0)",
        ),
        (
            "name: refine\nagents: [draft, critic, draft]\nmax_iterations: 2",
            "flow.yaml:17:29: loop 'refine' lists 'draft' twice; list each agent once",
        ),
        (
            "name: refine\nagents: [draft, critc, critic]\nmax_iterations: 2",
            "flow.yaml:17:21: loop 'refine' lists unknown agent 'critc'; did you mean 'critic'?",
        ),
        (
            "name: refine\nagents: [draft, critic]\nmax_iterations: 2\nuntil: critic.output.aproved",
            "flow.yaml:19:12: loop 'refine': until reads critic.output.aproved, but the output "
            "schema of 'critic' has no field 'aproved'; did you mean 'approved'?",
        ),
        (
            "name: refine\nagents: [draft, critic]\nmax_iterations: 2\nuntil: publish.output == 'x'",
            "flow.yaml:19:12: loop 'refine': until reads publish.output, but 'publish' is not a "
            "member of loop 'refine'; until reads what the loop's agents answered in the "
            "iteration that just ended",
        ),
        (
            "name: refine\nagents: [draft, critic]\nmax_iterations: 2\nuntil: critic.output.approved ==",
            "flow.yaml:19:36: loop 'refine': until: expected a value (a path, a string, a number, true, false, null or "
            "a list), found the end",
        ),
        (
            "name: refine\nagents: [draft]\nmax_iterations: 2",
            "flow.yaml:5:19: agent 'draft': task uses {{ critic.previous.output.feedback }}, but "
            "'critic' is not a member of loop 'refine'; previous reads an answer of the same "
            "loop one iteration back",
        ),
    ],
)
def test_each_loop_rule_points_at_what_is_wrong(body: str, message: str) -> None:
    assert only_problem(loop(body)) == message


def test_a_member_in_two_loops_and_a_loop_name_used_twice() -> None:
    text = (
        loop(
            "name: refine\nagents: [draft, critic]\nmax_iterations: 2\n"
            "- name: refine\n  agents: [critic]\n  max_iterations: 2"
        )
        .replace("\n    - name: refine", "\n  - name: refine")
        .replace("\n      ", "\n    ")
    )
    assert problems(text) == [
        "flow.yaml:19:11: duplicate loop name 'refine' (also loop #1); give each loop a unique name",
        "flow.yaml:20:14: loop 'refine' lists 'critic', which is already in loop 'refine'; an "
        "agent belongs to one loop at most",
    ]


def test_previous_outside_a_loop_and_an_unknown_previous_field() -> None:
    text = AGENTS.replace("loops:\n", "").replace(
        "Publish {{ critic.output.feedback }}", "Publish {{ critic.previous.output }}"
    )
    assert problems(text) == [
        "flow.yaml:5:19: agent 'draft': task uses {{ critic.previous.output.feedback }}, but "
        "'draft' is in no loop, so it has no previous iteration; list it under loops: or use "
        "{{ critic.output }}",
        "flow.yaml:14:20: agent 'publish': task uses {{ critic.previous.output }}, but "
        "'publish' is in no loop, so it has no previous iteration; list it under loops: or use "
        "{{ critic.output }}",
    ]
    text = loop("name: refine\nagents: [draft, critic]\nmax_iterations: 2").replace(
        "previous.output.feedback", "previous.output.feedbak"
    )
    assert only_problem(text) == (
        "flow.yaml:5:19: agent 'draft': task uses {{ critic.previous.output.feedbak }}, but the "
        "output schema of 'critic' has no field 'feedbak'; did you mean 'feedback'?"
    )


def test_an_agent_both_before_and_after_a_loop_and_a_cycle_inside_it() -> None:
    text = """\
name: flow
agents:
  - {name: a, model: m, task: t}
  - {name: b, model: m, task: t, depends_on: [a, c]}
  - {name: c, model: m, task: t, depends_on: a}
  - {name: e, model: m, task: t, depends_on: f}
  - {name: f, model: m, task: t, depends_on: e}
loops:
  - {name: l, agents: [a, b], max_iterations: 2}
  - {name: m, agents: [e, f], max_iterations: 2}
"""
    assert problems(text) == [
        "flow.yaml:6:46: dependency cycle e → f → e (each agent depends on the next); remove "
        "one of these dependencies",
        "flow.yaml:9:23: loop 'l': 'b' needs 'c', which needs 'a', but a loop runs as one "
        "unit, before or after any agent outside it; move 'c' into the loop or break one of "
        "those dependencies",
    ]


def test_a_workflow_made_in_python_is_checked_too() -> None:
    workflow = Workflow(
        name="flow",
        agents=[
            Agent(name="draft", model="m", task="Write {{ critic.previous.output }}"),
            Agent(name="critic", model="m", task="Review", depends_on="draft"),
        ],
        loops=[LoopSpec(name="refine", agents=["draft", "ghost"], max_iterations=2)],
    )
    assert [message for _, message in check_workflow(workflow)] == [
        "loop 'refine' lists unknown agent 'ghost'; known agents: draft, critic",
        "agent 'draft': task uses {{ critic.previous.output }}, but 'critic' is not a member "
        "of loop 'refine'; previous reads an answer of the same loop one iteration back",
    ]


def test_approval_forms_and_where_an_approval_cannot_go() -> None:
    text = (
        AGENTS.replace(
            '    task: "Publish {{ critic.output.feedback }}"',
            '    approval: {mode: after, timeout: 60}\n    task: "Publish {{ critic.output.feedback }}"',
        )
        + "  - {name: refine, agents: [draft, critic], max_iterations: 2}\n"
    )
    publish = load(text).workflow.agent("publish")
    assert publish.approval_spec is not None
    assert (publish.approval_spec.mode, publish.approval_spec.timeout) == ("after", 60)
    assert publish.approval_spec.on_timeout == "reject"
    inside = text.replace(
        '    task: "Review {{ draft.output }}"',
        '    approval: before\n    task: "Review {{ draft.output }}"',
    )
    assert only_problem(inside) == (
        "flow.yaml:10:5: agent 'critic': approval is not supported on a member of loop "
        "'refine': a person would be asked once per item or iteration; put the approval on an "
        "agent after it"
    )
    assert "approval.mode must be" in only_problem(text.replace("mode: after", "mode: later"))
