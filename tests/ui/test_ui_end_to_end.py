"""Real runs through the engine, shown by the plain reporter (and the live view's model)."""

from __future__ import annotations

import pytest

import agentops
from agentops.testing.server import OpenAITestServer
from agentops.ui import make_reporter
from agentops.ui.live import LiveReporter
from agentops.workflow.loader import load_workflow_text
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, workflow_on
from tests.support.fan_out import ROUTED_FLOW, answer_the_flow
from tests.support.ui import DEMO_YAML, output_of, render, row, text_console

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


def test_a_real_fan_out_reads_as_one_row_and_a_branch_routed_away_as_no_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    plain_console = text_console(terminal=False, width=160)
    plain = make_reporter(plain_console)
    live = LiveReporter(text_console(terminal=True, width=140), clock=lambda: 2e9)
    with OpenAITestServer(latency=0.01) as server:
        answer_the_flow(server, items=30)
        with plain:
            result = agentops.run(workflow_on(server, ROUTED_FLOW), subscribers=[plain, live])
    assert result.ok
    lines = output_of(plain_console).splitlines()
    assert "writer fans out over 30 items" in lines
    # 30 items: more than a line each is worth; a line each tenth, and the agent's own.
    progress = [line for line in lines if line.startswith("writer: ")]
    assert [line.split()[1] for line in progress] == [f"{n}/30" for n in range(3, 30, 3)]
    assert not any(line.startswith("writer[") for line in lines)
    assert any(line.startswith("writer succeeded in ") and ": 30/30 ✓, " in line for line in lines)
    reason = "when triage.output.label == 'bug' was false (triage.output.label: 'feature')"
    assert f"↷ fix_bug routed away: {reason}" in lines
    assert (
        lines[-1].startswith("workflow test_flow succeeded in ")
        and ": 4/5 agents succeeded, 1 routed away, " in lines[-1]
    )
    # The live view's model of the same run: one row per workflow agent.
    assert list(live.state.rows) == ["planner", "writer", "triage", "fix_bug", "plan_feature"]
    writer = row(render(live, width=140), "writer")
    assert writer.startswith("writer succeeded 30/30 ✓ ")
