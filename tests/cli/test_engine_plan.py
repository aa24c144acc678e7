"""``agentops plan``: order, critical path and worst-case cost, without calling any model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.cli.plan import make_plan
from agentops.runtime.budget import TOKENS_PER_MESSAGE, input_token_bound
from agentops.runtime.provider import ChatRequest, Message
from agentops.workflow.loader import load_workflow_text

FLOW = """\
name: planned
policies: {cost_cap: 0.05, max_tokens: 100}
prices:
  cheap-model: {input: 1.0, output: 2.0}
agents:
  - {name: a, model: "openai:gpt-4o", task: "first"}
  - {name: b, model: "openai:cheap-model", task: "second", depends_on: a}
  - {name: c, model: "openai:cheap-model", task: "third", depends_on: "a || b", max_tokens: 10}
  - {name: d, model: "openai:gpt-4o", task: "alone"}
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-test")
    path = tmp_path / "planned.yaml"
    path.write_text(FLOW, encoding="utf-8")
    return path


def test_plan_orders_agents_and_finds_the_critical_path(flow: Path) -> None:
    plan = make_plan(load_workflow_text(FLOW, str(flow)).workflow, {})
    assert [(a.name, a.step) for a in plan.agents] == [("a", 0), ("d", 0), ("b", 1), ("c", 2)]
    assert plan.critical_path == ["a", "b", "c"]


def test_worst_case_cost_is_what_the_engine_would_reserve(flow: Path) -> None:
    plan = make_plan(load_workflow_text(FLOW, str(flow)).workflow, {})
    by_name = {a.name: a for a in plan.agents}
    bound_a = input_token_bound(ChatRequest("gpt-4o", (Message("user", "first"),), 100))
    assert by_name["a"].input_tokens_bound == bound_a
    # c sees a and b, each bounded by its max_tokens (+ per-message overhead).
    assert by_name["c"].input_tokens_bound > by_name["b"].input_tokens_bound + 100
    cheap = by_name["b"]
    assert cheap.worst_case_cost == pytest.approx(
        (cheap.input_tokens_bound * 1.0 + 100 * 2.0) / 1e6
    )
    assert by_name["a"].worst_case_cost == pytest.approx((bound_a * 2.5 + 100 * 10.0) / 1e6)
    assert plan.worst_case_total == pytest.approx(sum(a.worst_case_cost or 0 for a in plan.agents))


def test_plan_command_prints_the_plan_and_json(flow: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(app, ["plan", str(flow)])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "Plan for planned: 4 agents, max_concurrency 16, cost cap $0.05"
    assert any(line.startswith("  step 3  c  openai:cheap-model  after a || b;") for line in lines)
    assert "Critical path (3 calls): a → b → c" in lines
    assert lines[-1].startswith("Worst-case total: $") and "of $0.05 cap" in lines[-1]

    data = json.loads(runner.invoke(app, ["plan", str(flow), "--json"]).stdout)
    assert data["critical_path"] == ["a", "b", "c"]
    assert {a["name"] for a in data["agents"]} == {"a", "b", "c", "d"}


def test_plan_marks_unknown_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-test")
    path = tmp_path / "unknown.yaml"
    path.write_text(
        "name: u\nagents:\n  - {name: a, model: 'openai:mystery', task: t}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 0
    assert "note: no known price for 'mystery': add it under prices:" in result.stdout
    assert "Worst-case total: unknown" in result.stdout


FAN_OUT = """\
name: report
policies: {cost_cap: 5, max_tokens: 100}
prices:
  gpt-4o-mini: {input: 1.0, output: 2.0}
agents:
  - name: planner
    model: "openai:gpt-4o-mini"
    max_tokens: 300
    output:
      schema:
        type: object
        properties:
          sections: {type: array, items: {type: object, properties: {title: {type: string}}, required: [title]}}
        required: [sections]
    task: "Outline a report."
  - name: writer
    model: "openai:gpt-4o-mini"
    for_each: planner.output.sections
    max_items: 50
    task: "Write the section '{{ item.title }}' ({{ item_number }} of {{ item_count }})."
  - name: editor
    model: "openai:gpt-4o-mini"
    depends_on: writer
    task: "Join the sections in order: {{ writer.output }}"
  - name: proofreader
    model: "openai:gpt-4o-mini"
    for_each: writer.output
    depends_on: planner
    task: "Proofread {{ item }}, then again {{ item }}; the plan was {{ planner.output }}."
  - name: triage
    model: "openai:gpt-4o-mini"
    output: {schema: {type: object, properties: {label: {enum: [long, short]}}, required: [label]}}
    task: "Long or short?"
  - name: expand
    model: "openai:gpt-4o-mini"
    depends_on: [triage, editor]
    when: triage.output.label == 'long'
    task: "Expand {{ editor.output }}."
"""


def bound_of(text: str, max_tokens: int = 100) -> int:
    """The input bound of a one-message prompt, as the engine computes it."""
    return input_token_bound(ChatRequest("gpt-4o-mini", (Message("user", text),), max_tokens))


def cost_of(input_tokens: int, output_tokens: int = 100) -> float:
    return (input_tokens * 1.0 + output_tokens * 2.0) / 1e6


@pytest.fixture
def fan_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-test")
    path = tmp_path / "report.yaml"
    path.write_text(FAN_OUT, encoding="utf-8")
    return path


def test_a_fan_outs_worst_case_is_max_items_times_one_item(fan_out: Path) -> None:
    plan = make_plan(load_workflow_text(FAN_OUT, str(fan_out)).workflow, {})
    writer = next(a for a in plan.agents if a.name == "writer")
    # One instance's prompt: its task with the item in place of {{ item.title }}, the item
    # bounded by the planner's max_tokens; the planner's whole answer is not sent to it.
    task = "Write the section '{{ item.title }}' ({{ item_number }} of {{ item_count }})."
    assert writer.input_tokens_bound == bound_of(task) + 300
    assert writer.fan_out_items == 50
    assert writer.per_item_cost == pytest.approx(cost_of(writer.input_tokens_bound))
    assert writer.worst_case_cost == pytest.approx(50 * cost_of(writer.input_tokens_bound))
    assert writer.for_each == "planner.output.sections"
    assert plan.worst_case_total == pytest.approx(sum(a.worst_case_cost or 0 for a in plan.agents))


def test_downstream_of_a_fan_out_is_fed_the_whole_list(fan_out: Path) -> None:
    plan = make_plan(load_workflow_text(FAN_OUT, str(fan_out)).workflow, {})
    by_name = {a.name: a for a in plan.agents}
    # max_items answers, each at most max_tokens plus a message's overhead.
    assert by_name["editor"].input_tokens_bound == bound_of("Join the sections in order: ") + 50 * (
        100 + TOKENS_PER_MESSAGE
    )
    assert by_name["editor"].fan_out_items is None
    # A fan-out over a fan-out's list: an item is one answer of the source (its max_tokens),
    # counted for each {{ item }}; a source placed whole in the task counts whole too.
    proofreader = by_name["proofreader"]
    task = "Proofread {{ item }}, then again {{ item }}; the plan was ."
    assert proofreader.input_tokens_bound == bound_of(task) + 2 * 100 + 300 + TOKENS_PER_MESSAGE
    assert proofreader.fan_out_items == 100  # the default max_items
    assert proofreader.worst_case_cost == pytest.approx(
        100 * cost_of(proofreader.input_tokens_bound)
    )


def test_an_agent_with_when_counts_in_full_and_says_when_it_runs(fan_out: Path) -> None:
    plan = make_plan(load_workflow_text(FAN_OUT, str(fan_out)).workflow, {})
    expand = next(a for a in plan.agents if a.name == "expand")
    assert expand.when == "triage.output.label == 'long'"
    assert expand.worst_case_cost == pytest.approx(cost_of(expand.input_tokens_bound))
    assert expand.worst_case_cost is not None and expand.worst_case_cost > 0


def test_plan_command_shows_fan_outs_and_routing(fan_out: Path) -> None:
    runner = CliRunner()
    text = runner.invoke(app, ["plan", str(fan_out)])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    writer = next(line for line in lines if line.startswith("  step 2  writer "))
    assert " per item ($" in writer and "×50 items (max_items) = worst case $" in writer
    assert (
        lines[lines.index(writer) + 1]
        == "          fan-out: one agent run per item of planner.output.sections"
    )
    assert "×100 items (max_items)" in next(line for line in lines if "proofreader " in line)
    assert (
        "          runs only when triage.output.label == 'long' (counted in the worst case: it may run)"
        in lines
    )

    data = json.loads(runner.invoke(app, ["plan", str(fan_out), "--json"]).stdout)
    agents = {a["name"]: a for a in data["agents"]}
    assert agents["writer"]["fan_out_items"] == 50
    assert agents["writer"]["for_each"] == "planner.output.sections"
    assert agents["writer"]["worst_case_cost"] == pytest.approx(
        50 * agents["writer"]["per_item_cost"]
    )
    assert agents["expand"]["when"] == "triage.output.label == 'long'"
    assert agents["editor"]["fan_out_items"] is None and agents["editor"]["when"] is None
    assert data["worst_case_total"] == pytest.approx(
        sum(a["worst_case_cost"] for a in data["agents"])
    )


LOOP = """\
name: refine
prices:
  gpt-4o-mini: {input: 1.0, output: 2.0}
policies: {max_tokens: 100}
agents:
  - name: draft
    model: "openai:gpt-4o-mini"
    task: "Write. Feedback: {{ critic.previous.output }}"
  - name: critic
    model: "openai:gpt-4o-mini"
    depends_on: draft
    task: "Review {{ draft.output }}"
  - name: publish
    model: "openai:gpt-4o-mini"
    depends_on: critic
    task: "Publish {{ critic.output }}"
loops:
  - {name: refine, agents: [draft, critic], max_iterations: 4}
"""


def test_a_loops_worst_case_is_max_iterations_times_one_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-test")
    path = tmp_path / "refine.yaml"
    path.write_text(LOOP, encoding="utf-8")
    plan = make_plan(load_workflow_text(LOOP, str(path)).workflow, {})
    by_name = {a.name: a for a in plan.agents}
    draft = by_name["draft"]
    # The previous answer it reads is counted at the critic's max_tokens.
    assert draft.input_tokens_bound == bound_of("Write. Feedback: ") + 100 + TOKENS_PER_MESSAGE
    assert (draft.loop, draft.max_iterations) == ("refine", 4)
    assert draft.per_iteration_cost == pytest.approx(cost_of(draft.input_tokens_bound))
    assert draft.worst_case_cost == pytest.approx(4 * cost_of(draft.input_tokens_bound))
    critic = by_name["critic"]
    assert critic.worst_case_cost == pytest.approx(4 * cost_of(critic.input_tokens_bound))
    # Downstream runs once, fed the last iteration's answer.
    publish = by_name["publish"]
    assert publish.max_iterations is None
    assert publish.worst_case_cost == pytest.approx(cost_of(publish.input_tokens_bound))

    text = CliRunner().invoke(app, ["plan", str(path)])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    line = next(line for line in lines if line.startswith("  step 1  draft "))
    assert " per iteration ($" in line and "×4 iterations (max_iterations) = worst case $" in line
    assert lines[lines.index(line) + 1] == (
        "          loop refine: one agent run per iteration, up to 4 (max_iterations)"
    )
