"""A real run through the engine, shown by the plain reporter."""

from __future__ import annotations

import pytest

import agentops
from agentops.ui import make_reporter
from agentops.workflow.loader import load_workflow_text
from tests.support.ui import DEMO_YAML, output_of, text_console

fake = pytest.importorskip("agentops.providers.fake", reason="FakeProvider is not written yet")


def test_a_run_prints_lines_for_every_agent_and_the_sink_output() -> None:
    loaded = load_workflow_text(
        DEMO_YAML.replace("policies: {cost_cap: 1.0}\n", ""), filename="demo.yaml"
    )
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    answer = "[bold red]answer[/] \x1b[31mcoloured\x1b[0m"
    with reporter:
        result = agentops.run(loaded, subscribers=[reporter], provider=fake.FakeProvider(answer))
    assert result.ok
    text = output_of(console)
    lines = text.splitlines()
    assert lines[0] == "workflow demo started: 3 agents, no cost cap"
    for name in ("researcher", "critic", "summarizer"):
        assert sum(line.startswith(f"{name} started (") for line in lines) == 1
        assert sum(line.startswith(f"{name} succeeded in ") for line in lines) == 1
    # Dependencies first: the summarizer starts only after both upstream agents succeeded.
    first = {
        name: next(i for i, line in enumerate(lines) if line.startswith(f"{name} "))
        for name in ("researcher", "critic", "summarizer")
    }
    succeeded = {
        name: next(i for i, line in enumerate(lines) if line.startswith(f"{name} succeeded"))
        for name in ("researcher", "critic")
    }
    assert first["summarizer"] > max(succeeded.values())
    # Only the sink's output is printed, in full and inert.
    output_at = lines.index(next(line for line in lines if "summarizer output" in line))
    assert lines[output_at + 1] == "[bold red]answer[/] coloured"
    assert "researcher output" not in text and "\x1b" not in text
    assert lines[-1].startswith("workflow demo succeeded in ")
