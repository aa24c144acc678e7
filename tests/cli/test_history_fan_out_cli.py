"""The history commands on fan-outs and routing, through the real Typer app: a fan-out
agent with its item count and statuses and its instances under it (capped, ``--all``), why
each skipped agent was skipped, instance rows in list-runs / show-runs / show-run, the JSON
shape, and costs counting each instance once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.runtime.events import AgentFinished, AgentStatus, Event, RunStatus, SkipCause
from agentops.store import open_store
from tests.support.store import (
    LABEL,
    failed,
    fan_out_events,
    fan_out_of,
    fan_out_workflow,
    instance_of,
    not_run,
    record_events,
    routed_away,
    routed_to,
    succeeded,
)

FLOW = fan_out_workflow()
SECTIONS = [{"title": "Intro"}, {"title": "Body", "words": 300}, {"title": "End"}]
HOSTILE = "\x1b[31mred\x1b[0m \x1b]52;c;cm0gLXJmIH4=\x07 [bold]literal[/bold] \u202eevil"
BUG = f"{LABEL} == 'bug'"
FEATURE = f"{LABEL} == 'feature'"


@dataclass
class History:
    db: Path
    routed: int  # a run with a fan-out (one item failed) and routing
    wide: int  # a fan-out of 25 items, the cost cap leaving two more unstarted


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    db = tmp_path / "history.db"
    instances = [
        instance_of("writer", 0, SECTIONS[0], cost=0.1),
        instance_of("writer", 1, SECTIONS[1], failed("writer[1]", "BadRequestError: 400 too long")),
        instance_of("writer", 2, SECTIONS[2], cost=0.4),
    ]
    editor = not_run("editor", AgentStatus.SKIPPED, "dependency writer failed")
    editor.skip_cause = SkipCause.DEPENDENCY
    events: list[Event] = [
        AgentFinished(succeeded("planner", "outline", cost=0.01)),
        *fan_out_events("writer", fan_out_of("writer", instances)),
        AgentFinished(editor),
        AgentFinished(succeeded("triage", '{"label": "feature"}', cost=0.04)),
        AgentFinished(routed_away("fix_bug", BUG, {LABEL: "feature"})),
        AgentFinished(
            routed_to(succeeded("plan_feature", "a plan", cost=0.08), FEATURE, {LABEL: "feature"})
        ),
    ]
    many = [instance_of("writer", i, {"title": f"part {i}"}, cost=0.001) for i in range(25)]
    capped = not_run("editor", AgentStatus.SKIPPED, "cost cap")
    capped.skip_cause = SkipCause.COST_CAP
    wide: list[Event] = [
        *fan_out_events("writer", fan_out_of("writer", many, item_count=27)),
        AgentFinished(capped),
    ]
    with open_store(db) as store:
        routed = record_events(store, FLOW, events, RunStatus.FAILED)
        wide_run = record_events(store, FLOW, wide, RunStatus.FAILED)
    yield History(db, routed, wide_run)


def invoke(*args: str | Path | int) -> Any:
    # Wide enough that no name is cut: what is shown, not how 80 columns squeeze it.
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    return result.stdout


def json_of(*args: str | Path | int) -> Any:
    return json.loads(invoke(*args, "--json"))


def test_a_fan_out_agent_lists_its_items_under_it_and_each_skip_says_why(history: History) -> None:
    out = invoke("show-workflow-run", history.routed, "--db", history.db)
    table = [line.split() for line in out.splitlines()[4:15]]
    assert [row[0] for row in table[2:]] == [
        "planner",
        "writer",
        "writer[0]",
        "writer[1]",
        "writer[2]",
        "editor",
        "triage",
        "fix_bug",
        "plan_feature",
    ]
    lines = out.splitlines()
    writer_row = next(line for line in lines if line.startswith("writer (3 items)"))
    assert writer_row.split()[3:6] == ["5", "failed", "2/3"]
    assert "$0.5000" in writer_row  # what its instances spent
    assert [line[:12] for line in lines if "writer[" in line and "agent run" not in line] == [
        "  writer[0] ",
        "  writer[1] ",
        "  writer[2] ",
    ]
    assert "routed away" in next(line for line in lines if line.startswith("fix_bug"))

    assert "writer (agent run 5) · fan-out over 3 items: 2 succeeded, 1 failed" in out
    assert "writer[1] (agent run 3)" in out and '  item: {"title":"Body","words":300}' in out
    assert "failed: BadRequestError: 400 too long" in out
    assert "routed away: when triage.output.label == 'bug' was false (label: 'feature')" in out
    assert "skipped: dependency writer failed" in out
    assert (
        """  when triage.output.label == 'feature' held (triage.output.label: "feature")""" in out
    )
    # A fan-out agent's output is its items' outputs, shown under each item, not again.
    assert out.count("section 0") == 1


def test_a_wide_fan_out_shows_its_first_items_and_says_how_to_see_all(history: History) -> None:
    out = invoke("show-workflow-run", history.wide, "--db", history.db)
    assert "writer (agent run 35) · fan-out over 27 items: 25 succeeded, 2 not run" in out
    lines = out.splitlines()
    assert sum(line.startswith("  writer[") for line in lines) == 20
    assert "5 more: --all" in next(line for line in lines if line.startswith("  …"))
    assert "writer[19] (agent run" in out and "writer[20]" not in out
    assert (
        f"… 5 more items of writer: agentops show-workflow-run {history.wide} --all (or --json)"
        in out
    )
    assert "skipped (cost cap): cost cap" in out
    assert "skipped (cost cap)" in next(line for line in lines if line.startswith("editor"))

    every = invoke("show-workflow-run", history.wide, "--all", "--db", history.db)
    assert sum(line.startswith("  writer[") for line in every.splitlines()) == 25
    assert "writer[24] (agent run" in every and "more items" not in every


def test_the_json_nests_instances_under_their_agent(history: History) -> None:
    shown = json_of("show-workflow-run", history.routed, "--db", history.db)
    assert [a["name"] for a in shown["agents"]] == [
        "planner",
        "writer",
        "editor",
        "triage",
        "fix_bug",
        "plan_feature",
    ]
    writer = shown["agents"][1]
    assert (writer["item_count"], writer["item_index"], writer["cost"]) == (3, None, 0.0)
    assert writer["value"] == ["section 0", None, "section 2"]
    assert [
        (i["name"], i["agent"], i["item_index"], i["item"], i["status"], i["instances"])
        for i in writer["instances"]
    ] == [
        ("writer[0]", "writer", 0, SECTIONS[0], "succeeded", None),
        ("writer[1]", "writer", 1, SECTIONS[1], "failed", None),
        ("writer[2]", "writer", 2, SECTIONS[2], "succeeded", None),
    ]
    assert [len(i["attempts"]) for i in writer["instances"]] == [1, 1, 1]
    editor, fix_bug, plan_feature = shown["agents"][2], shown["agents"][4], shown["agents"][5]
    assert (editor["skip_cause"], editor["decision"]) == ("dependency", None)
    assert fix_bug["skip_cause"] == "routed"
    assert fix_bug["decision"] == {"expression": BUG, "held": False, "values": {LABEL: "feature"}}
    assert plan_feature["decision"]["held"] is True and plan_feature["skip_cause"] is None

    wide = json_of("show-workflow-run", history.wide, "--db", history.db)
    assert len(wide["agents"][0]["instances"]) == 25  # --json has every item


def test_instance_rows_in_the_listings_and_show_run(history: History) -> None:
    listed = invoke("list-runs", "--limit", "40", "--db", history.db)
    names = [line.split()[3] for line in listed.splitlines()[2:]]
    assert "writer[24]" in names and "writer[1]" in names and names.count("writer") == 2
    fix_bug_line = next(line for line in listed.splitlines() if " fix_bug " in line)
    assert "routed away" in fix_bug_line

    runs = json_of("list-runs", "--limit", "40", "--db", history.db)
    second = next(
        r for r in runs if r["name"] == "writer[1]" and r["workflow_run_id"] == history.routed
    )
    assert (second["agent"], second["item_index"], second["item"]) == ("writer", 1, SECTIONS[1])
    assert "instances" not in second

    shown = invoke("show-runs", "--workflow", "report", "--limit", "40", "--db", history.db)
    assert "· writer[2] of report · succeeded" in shown
    assert "routed away: when triage.output.label == 'bug' was false (label: 'feature')" in shown

    item = invoke("show-run", second["id"], "--db", history.db)
    assert f"Agent run {second['id']} · writer[1] of report · failed" in item
    assert 'item 1 of writer: \n{"title":"Body","words":300}' in item
    whole = next(
        r for r in runs if r["name"] == "writer" and r["workflow_run_id"] == history.routed
    )
    assert "fan-out over 3 items: each is an agent run of its own" in invoke(
        "show-run", whole["id"], "--db", history.db
    )
    fix_bug = next(r for r in runs if r["name"] == "fix_bug")
    routed = invoke("show-run", fix_bug["id"], "--db", history.db)
    assert "Agent run 8 · fix_bug of report · routed away" in routed
    assert "routed away: when triage.output.label == 'bug' was false (label: 'feature')" in routed
    assert "Error:" not in routed


def test_costs_and_run_counts_count_each_instance_once(history: History) -> None:
    costs = json_of("costs", "--db", history.db)
    total = costs["total"]
    # 0.01 + 0.1 + 0.4 + 0.04 + 0.08 in the first run, 25 x 0.001 in the second
    assert total["cost"] == pytest.approx(0.655)
    # 8 of the first run (3 items), 26 of the second (25 items): fan-out agents' own rows not counted
    assert total["agent_runs"] == 8 + 26
    runs = json_of("list-workflow-runs", "--db", history.db)
    assert [(r["cost"], r["agents_total"], r["agents_succeeded"]) for r in runs] == [
        (pytest.approx(0.025), 2, 0),
        (pytest.approx(0.63), 6, 3),
    ]
    out = invoke("show-workflow-run", history.routed, "--db", history.db)
    assert "cost $0.6300 (no cap)" in out


def test_a_decisions_values_are_shown_inert(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    reply = routed_to(succeeded("reply", "ok"), "triage.output.label", {LABEL: HOSTILE})
    routed = routed_away("fix_bug", BUG, {LABEL: HOSTILE})
    routed.error = None  # the view says why from the decision itself
    with open_store(db) as store:
        run_id = record_events(
            store, FLOW, [AgentFinished(reply), AgentFinished(routed)], RunStatus.SUCCEEDED
        )
    for args in (
        ("show-workflow-run", run_id),
        ("show-runs", "--workflow", "report"),
        ("show-run", 1),
        ("show-run", 2),
    ):
        out = invoke(*args, "--db", db)
        # Values are shown as JSON (escapes spelled out), and bidi overrides removed.
        assert not any(bit in out for bit in ("\x1b", "\x07", "\u202e")), args
        assert "[bold]literal[/bold]" in out, args
    assert "routed away: when triage.output.label == 'bug' was false (triage.output.label:" in out
