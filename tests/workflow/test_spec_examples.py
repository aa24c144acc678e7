"""The example workflows users copy from: all valid, the sketch's two verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentops.workflow.graph import AnyOf, WorkflowGraph, dependency_edges, parse_condition
from agentops.workflow.loader import load_workflow
from agentops.workflow.templates import references
from tests.support.spec import EXAMPLES, SKETCH_PARALLEL, SKETCH_SAMPLE

ALL = sorted(EXAMPLES.glob("*.yaml"))


def test_the_expected_examples_exist() -> None:
    assert {p.name for p in ALL} >= {
        "sample_workflow.yaml",
        "parallel_workflow.yaml",
        "creative_workflow.yaml",
        "or_templates_workflow.yaml",
        "local_workflow.yaml",
        "structured_workflow.yaml",
        "orchestrator_workers.yaml",
        "routing.yaml",
        "evaluator_optimizer.yaml",
    }


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_example_validates(path: Path) -> None:
    loaded = load_workflow(path)
    assert loaded.path == str(path)
    assert WorkflowGraph(loaded.workflow).find_cycle() is None


def test_sketch_examples_are_verbatim() -> None:
    assert (EXAMPLES / "sample_workflow.yaml").read_text(encoding="utf-8") == SKETCH_SAMPLE
    assert (EXAMPLES / "parallel_workflow.yaml").read_text(encoding="utf-8") == SKETCH_PARALLEL


def test_creative_example_fans_out_and_in() -> None:
    graph = WorkflowGraph(load_workflow(EXAMPLES / "creative_workflow.yaml").workflow)
    levels = graph.levels()
    assert sorted(levels.values()) == [0, 1, 1, 1, 2]
    assert graph.sinks() == ["editor"]


def test_or_templates_example_shows_every_feature() -> None:
    workflow = load_workflow(EXAMPLES / "or_templates_workflow.yaml").workflow
    raw = [agent.depends_on for agent in workflow.agents]
    assert any(isinstance(d, dict) and "any" in d for d in raw), "an {any: [...]} dependency"
    assert any(isinstance(d, str) and "||" in d for d in raw), "a string expression"
    assert any(isinstance(d, dict) and "all" in d for d in raw), "a nested all/any mapping"
    assert any(isinstance(parse_condition(d), AnyOf) for d in raw)
    kinds = {ref.kind for agent in workflow.agents for ref in references(agent.task)}
    assert kinds == {"agent", "input"}
    assert any(agent.system for agent in workflow.agents)
    assert all(workflow.input_default(name) is not None for name in workflow.inputs)


def test_local_example_is_a_quick_demo_on_the_bundled_model() -> None:
    workflow = load_workflow(EXAMPLES / "local_workflow.yaml").workflow
    assert 3 <= len(workflow.agents) <= 4
    assert workflow.policies.max_concurrency == 2
    for agent in workflow.agents:
        assert (agent.provider, agent.model) == ("local", "smollm2")
        assert workflow.effective_max_tokens(agent) <= 64
    graph = WorkflowGraph(workflow)
    fan_out = [name for name, users in graph.dependents.items() if len(users) >= 2]
    fan_in = [name for name, deps in graph.dependencies.items() if len(deps) >= 2]
    assert fan_out and fan_in
    assert all(not any(dependency_edges(c).values()) for c in graph.conditions.values())
    assert all(workflow.input_default(name) is not None for name in workflow.inputs)


def test_structured_example_reads_its_schema_file_and_uses_fields() -> None:
    workflow = load_workflow(EXAMPLES / "structured_workflow.yaml").workflow
    planner = workflow.agent("planner")
    assert planner.output is not None and planner.output.retries == 2
    assert isinstance(planner.output.json_schema, dict) and planner.output.json_schema[
        "required"
    ] == ["title", "steps"]
    fields = [
        ref.fields for ref in references(workflow.agent("writer").task) if ref.kind == "agent"
    ]
    assert ("steps", 0) in fields and ("language",) in fields
