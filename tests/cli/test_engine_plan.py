"""``agentops plan``: order, critical path and worst-case cost, without calling any model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.cli.plan import make_plan
from agentops.runtime.budget import input_token_bound
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
