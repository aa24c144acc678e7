"""Fan-out (``for_each``) and routing (``when``) end to end: real ``agentops run`` processes
against the shipped test server (in this process), one test per rule of issue 20's
Semantics that the runtime owns, checked on what a user sees (exit code, the terminal lines,
``--json``) and on the history file read with ``sqlite3``.

The terminal lines are asserted on robust pieces (agent names such as ``writer[1]``, status
words, the numbers), not on their whole layout.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.fan_out import ROUTING
from tests.support.reliability import run_agentops, write_workflow

SECTIONS = {
    "type": "object",
    "properties": {
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}},
                "required": ["title"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["sections"],
    "additionalProperties": False,
}
SECTION = {
    "type": "object",
    "properties": {"heading": {"type": "string"}, "words": {"type": "integer"}},
    "required": ["heading", "words"],
    "additionalProperties": False,
}
OUTLINE = "Outline a report."
CLASSIFY = "Classify the ticket."


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def report(**writer: Any) -> list[dict[str, Any]]:
    """planner → writer (once per section) → editor."""
    return [
        {"name": "planner", "output": {"schema": SECTIONS}, "task": OUTLINE},
        {
            "name": "writer",
            "for_each": "planner.output.sections",
            "task": "Write the section '{{ item.title }}' ({{ item_number }} of {{ item_count }}).",
            **writer,
        },
        {"name": "editor", "depends_on": "writer", "task": "Join: {{ writer.output }}"},
    ]


def outline(server: OpenAITestServer, *titles: str) -> None:
    server.answer_when(OUTLINE, {"sections": [{"title": title} for title in titles]})


def run(
    folder: Path, server: OpenAITestServer, agents: list[dict[str, Any]], **options: Any
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    """``agentops run FLOW --json``: the process, its JSON (stdout) and the history file.
    The terminal view goes to stderr."""
    flow = write_workflow(folder / "flow.yaml", server.base_url, agents, **options)
    db = folder / "history.db"
    completed = run_agentops("run", flow, "--db", db, "--json")
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed, json.loads(completed.stdout), db


def prompt_of(request: Any) -> str:
    return str(request.body["messages"][-1]["content"])


def prompts(server: OpenAITestServer) -> list[str]:
    return [prompt_of(r) for r in server.requests]


def rows(db: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query, params).fetchall()


def item_rows(db: Path, agent: str) -> list[tuple[Any, ...]]:
    """(item_index, status, output) of each recorded instance of ``agent``, in item order."""
    return rows(
        db,
        "SELECT item_index, status, output FROM runs WHERE agent = ? AND item_index IS NOT NULL "
        "ORDER BY item_index",
        agent,
    )


def lines_about(text: str, name: str) -> list[str]:
    """The plain lines about agent ``name``: it comes first, or after a status mark."""
    return [line for line in text.splitlines() if name in line.split()[:2]]


# --- fan-out ------------------------------------------------------------------------------


def test_the_output_is_in_item_order_and_its_fields_reach_the_next_prompt(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server, "Alpha", "Beta", "Gamma")
    for number, title in enumerate(("Alpha", "Beta", "Gamma"), start=1):
        server.answer_when(f"section '{title}'", {"heading": title.upper(), "words": number})
    # The first item answers last: the list must follow the items, not the finishing order.
    delays = {"'Alpha'": 0.6, "'Beta'": 0.3}
    server.latency = lambda body: next(
        (s for marker, s in delays.items() if marker in json.dumps(body)), 0.01
    )
    agents = report(output={"schema": SECTION})
    agents[2]["task"] = (
        "First: {{ writer.output[0].heading }}; last: {{ writer.output[2].words }}; "
        "all: {{ writer.output }}"
    )
    completed, result, db = run(tmp_path, server, agents)

    assert completed.returncode == 0, completed.stderr
    assert result["status"] == "succeeded"
    writer = result["agents"]["writer"]
    expected = [
        {"heading": "ALPHA", "words": 1},
        {"heading": "BETA", "words": 2},
        {"heading": "GAMMA", "words": 3},
    ]
    assert json.loads(writer["output"]) == expected
    assert writer["item_count"] == 3
    assert [i["name"] for i in writer["items"]] == ["writer[0]", "writer[1]", "writer[2]"]
    assert [i["item"] for i in writer["items"]] == [
        {"title": t} for t in ("Alpha", "Beta", "Gamma")
    ]
    # The server answered Gamma, then Beta, then Alpha: the list follows the items regardless.
    writes = sorted(
        (r for r in server.requests if prompt_of(r).startswith("Write")),
        key=lambda r: r.finished_at or 0.0,
    )
    assert [prompt_of(r).split("'")[1] for r in writes] == ["Gamma", "Beta", "Alpha"]
    sent = prompts(server)
    editor = next(p for p in sent if p.startswith("First:"))
    assert editor.startswith("First: ALPHA; last: 3; all: ")
    assert json.loads(editor.split("all: ", 1)[1]) == expected
    assert "Write the section 'Beta' (2 of 3)." in sent
    # Each item is an agent run the user sees start and succeed under its own name.
    for index in range(3):
        assert any(
            "succeeded" in line for line in lines_about(completed.stderr, f"writer[{index}]")
        )
    assert [(i, s, json.loads(o)) for i, s, o in item_rows(db, "writer")] == [
        (i, "succeeded", value) for i, value in enumerate(expected)
    ]


def test_an_empty_list_succeeds_with_an_empty_output(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server)
    completed, result, db = run(tmp_path, server, report())
    assert completed.returncode == 0, completed.stderr
    assert result["status"] == "succeeded"
    assert result["agents"]["writer"]["output"] == "[]"
    assert result["agents"]["writer"]["items"] == []
    assert result["agents"]["editor"]["status"] == "succeeded"
    assert prompts(server)[1:] == ["Join: []"]  # no item called; the editor ran on the list
    assert item_rows(db, "writer") == []
    assert rows(db, "SELECT status, item_count FROM runs WHERE agent = 'writer'") == [
        ("succeeded", 0)
    ]


def test_more_items_than_max_items_fail_the_agent_naming_both_numbers(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server, *"abcde")
    completed, result, _ = run(tmp_path, server, report(max_items=3))
    assert completed.returncode == 1
    writer = result["agents"]["writer"]
    assert writer["status"] == "failed"
    assert "5 items" in writer["error"] and "max_items 3" in writer["error"]
    assert any(
        "failed" in line and "5 items" in line and "max_items 3" in line
        for line in lines_about(completed.stderr, "writer")
    )
    assert result["agents"]["editor"]["status"] == "skipped"
    assert result["agents"]["editor"]["skip_cause"] == "dependency"
    assert len(server.requests) == 1  # the planner only: no item was called


def test_a_failed_item_fails_the_agent_once_the_others_settle(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server, "Alpha", "Broken", "Gamma")
    server.inject_for(lambda body: "'Broken'" in json.dumps(body), kind="status", status=400)
    completed, result, db = run(tmp_path, server, report())
    assert completed.returncode == 1
    assert result["status"] == "failed"
    writer = result["agents"]["writer"]
    assert [i["status"] for i in writer["items"]] == ["succeeded", "failed", "succeeded"]
    assert writer["status"] == "failed"
    assert writer["error"].startswith("1 of 3 items failed; first: writer[1]:")
    assert any("failed" in line for line in lines_about(completed.stderr, "writer[1]"))
    assert any("skipped" in line for line in lines_about(completed.stderr, "editor"))
    assert result["agents"]["editor"]["skip_cause"] == "dependency"
    assert not any(p.startswith("Join:") for p in prompts(server))
    assert [(i, s) for i, s, _ in item_rows(db, "writer")] == [
        (0, "succeeded"),
        (1, "failed"),
        (2, "succeeded"),
    ]


def test_on_item_error_continue_gives_null_and_the_run_still_fails(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server, "Alpha", "Broken", "Gamma")
    server.inject_for(lambda body: "'Broken'" in json.dumps(body), kind="status", status=400)
    completed, result, _ = run(tmp_path, server, report(on_item_error="continue"))
    assert completed.returncode == 1
    assert result["status"] == "failed"
    writer = result["agents"]["writer"]
    assert writer["status"] == "succeeded"
    listed = json.loads(writer["output"])
    assert listed[1] is None and "Alpha" in listed[0] and "Gamma" in listed[2]
    assert "1 of 3 items failed and are null in the list" in writer["error"]
    # The dependents run, on the list with its null.
    assert result["agents"]["editor"]["status"] == "succeeded"
    editor = next(p for p in prompts(server) if p.startswith("Join:"))
    assert json.loads(editor.removeprefix("Join: "))[1] is None


def test_the_cost_cap_stops_starting_items_and_the_spend_stays_under_it(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    outline(server, *[f"s{i}" for i in range(20)])
    completed, result, db = run(
        tmp_path,
        server,
        report(),
        policies={"cost_cap": 0.5, "max_concurrency": 3, "max_tokens": 50},
        prices={"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}},
    )
    assert completed.returncode == 1
    writer = result["agents"]["writer"]
    assert writer["status"] == "failed"
    assert writer["error"].startswith("cost cap: ")
    ran = writer["items"]
    assert 0 < len(ran) < 20
    assert f"{20 - len(ran)} of 20 items not run" in writer["error"]
    assert any(i["skip_cause"] == "cost_cap" for i in ran)
    assert "cost cap" in completed.stderr
    assert result["agents"]["editor"]["status"] == "skipped"
    assert result["cost"] <= 0.5
    [(spent,)] = rows(db, "SELECT cost FROM workflow_runs")
    assert 0 < spent <= 0.5
    calls = [p for p in prompts(server) if p.startswith("Write")]
    assert len(calls) == sum(1 for i in ran if i["status"] == "succeeded")


def test_resume_reuses_the_items_that_succeeded(tmp_path: Path, server: OpenAITestServer) -> None:
    outline(server, "Alpha", "Broken", "Gamma")
    server.inject_for(lambda body: "'Broken'" in json.dumps(body), kind="status", status=400)
    completed, first, db = run(tmp_path, server, report())
    assert completed.returncode == 1
    server.clear_faults()
    before = len(server.requests)
    resumed = run_agentops("resume", str(first["workflow_run_id"]), "--db", db, "--json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] == "succeeded"
    again = [prompt_of(r) for r in server.requests[before:]]
    # Only the failed item and what needed the fan-out are called again.
    assert len(again) == 2
    assert again[0] == "Write the section 'Broken' (2 of 3)."
    assert again[1].startswith("Join: ")
    items = result["agents"]["writer"]["items"]
    assert [(i["status"], i["reused"]) for i in items] == [
        ("succeeded", True),
        ("succeeded", False),
        ("succeeded", True),
    ]


# --- routing ------------------------------------------------------------------------------

ROUTED_REASON = "when triage.output.label == 'bug' was false (triage.output.label: 'feature')"


def test_a_branch_routed_away_is_skipped_with_its_reason_and_the_run_succeeds(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.answer_when(CLASSIFY, {"label": "feature"})
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, ROUTING)
    db = tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert any(
        "routed away" in line and ROUTED_REASON in line
        for line in lines_about(completed.stdout + completed.stderr, "fix_bug")
    )
    assert any("skipped" in line for line in lines_about(completed.stdout, "test_fix"))
    assert any("succeeded" in line for line in lines_about(completed.stdout, "reply"))
    assert not any(p in ("Fix it.", "Test the fix.") for p in prompts(server))
    skipped = rows(
        db, "SELECT agent, status, skip_cause, error FROM runs WHERE skip_cause IS NOT NULL"
    )
    assert sorted(skipped)[0] == ("fix_bug", "skipped", "routed", ROUTED_REASON)
    assert [(a, s, c) for a, s, c, _ in sorted(skipped)[1:]] == [("test_fix", "skipped", "routed")]
    [(status,)] = rows(db, "SELECT status FROM workflow_runs")
    assert status == "succeeded"

    # --json: the skip's cause and the decision with the value it read.
    as_json = json.loads(run_agentops("run", flow, "--db", db, "--json").stdout)
    assert as_json["status"] == "succeeded"
    fix = as_json["agents"]["fix_bug"]
    assert (fix["status"], fix["skip_cause"], fix["error"]) == ("skipped", "routed", ROUTED_REASON)
    assert fix["decision"] == {
        "expression": "triage.output.label == 'bug'",
        "held": False,
        "values": {"triage.output.label": "feature"},
    }
    assert as_json["agents"]["plan_feature"]["decision"]["held"] is True
    assert as_json["agents"]["test_fix"]["skip_cause"] == "routed"


def test_a_skip_behind_a_failed_branch_fails_the_run(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.answer_when(CLASSIFY, {"label": "bug"})
    server.inject_for(lambda body: "Fix it." in json.dumps(body), kind="status", status=400)
    completed, result, _ = run(tmp_path, server, ROUTING)
    assert completed.returncode == 1
    agents: Mapping[str, Any] = result["agents"]
    assert agents["fix_bug"]["status"] == "failed"
    assert agents["plan_feature"]["skip_cause"] == "routed"
    assert agents["test_fix"]["skip_cause"] == "dependency"
    assert agents["reply"]["skip_cause"] == "dependency"
    assert result["status"] == "failed"
