"""The fan-out and routing examples, run as a user runs them: ``agentops run examples/X.yaml``
in a real process, the built-in ``openai`` provider pointed at the shipped test server (in
this process) through ``OPENAI_BASE_URL``, which answers the planner's and the triage's
JSON."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.reliability import cli_env, run_agentops
from tests.support.spec import EXAMPLES

KEY = "sk-examples-test"
SECTIONS = [
    {"title": "Shade", "points": ["street trees", "awnings"]},
    {"title": "Water", "points": ["fountains"]},
    {"title": "Roofs", "points": ["white roofs", "green roofs"]},
]
BRANCHES = {"bug": "fix_bug", "feature": "plan_feature", "question": "answer_question"}
# The start of each branch's task, as the server sees it.
BRANCH_TASKS = {
    "fix_bug": "Find the likely cause of this bug",
    "plan_feature": "Sketch how we could build this feature",
    "answer_question": "Answer this question from a user",
}


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        running.answer_when("Outline a report", {"sections": SECTIONS})
        yield running


def run_example(
    name: str, server: OpenAITestServer, db: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
    completed = run_agentops("run", EXAMPLES / name, "--db", db, "--json", env=env)
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed, json.loads(completed.stdout)


def prompts(server: OpenAITestServer) -> list[str]:
    return [str(r.body["messages"][-1]["content"]) for r in server.requests]


def test_orchestrator_workers_writes_one_section_per_item_and_joins_them_in_order(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    db = tmp_path / "history.db"
    completed, result = run_example("orchestrator_workers.yaml", server, db)

    assert completed.returncode == 0, completed.stderr
    assert result["status"] == "succeeded"
    sent = prompts(server)
    writes = [p for p in sent if p.startswith("Write section")]
    assert len(writes) == 3
    for number, section in enumerate(SECTIONS, start=1):
        expected = (
            f"Write section {number} of 3 of a report on how cities adapt to heat waves:\n"
            f'"{section["title"]}". Cover these points: {json.dumps(section["points"])}.\n'
        )
        assert expected in writes
    writer = result["agents"]["writer"]
    outputs = json.loads(writer["output"])
    # The test server echoes the start of each prompt: the list is in item order.
    assert [f"Write section {n} of 3" in o for n, o in enumerate(outputs, start=1)] == [True] * 3
    assert [i["item"] for i in writer["items"]] == SECTIONS
    editor = next(r for r in server.requests if "Join these sections" in str(r.body["messages"]))
    assert editor.body["model"] == "gpt-4o"
    assert writer["output"] in str(editor.body["messages"][-1]["content"])
    assert result["agents"]["editor"]["status"] == "succeeded"
    assert 0 < result["cost"] <= 0.50
    with sqlite3.connect(db) as connection:
        recorded = connection.execute(
            "SELECT item_index, status FROM runs WHERE agent = 'writer' AND item_index IS NOT NULL "
            "ORDER BY item_index"
        ).fetchall()
    assert recorded == [(0, "succeeded"), (1, "succeeded"), (2, "succeeded")]


@pytest.mark.parametrize("label", list(BRANCHES))
def test_routing_runs_exactly_the_branch_of_the_label(
    tmp_path: Path, server: OpenAITestServer, label: str
) -> None:
    server.answer_when("Classify this support ticket", {"label": label, "summary": "CSV export"})
    completed, result = run_example("routing.yaml", server, tmp_path / "history.db")

    # Two branches routed away: not a failure.
    assert completed.returncode == 0, completed.stderr
    assert result["status"] == "succeeded"
    taken = BRANCHES[label]
    sent = prompts(server)
    for branch, task in BRANCH_TASKS.items():
        calls = [p for p in sent if p.startswith(task)]
        agent = result["agents"][branch]
        if branch == taken:
            assert len(calls) == 1 and agent["status"] == "succeeded"
        else:
            assert calls == []  # routed away: no call
            reason = f"when triage.output.label == '{_label_of(branch)}' was false (triage.output.label: '{label}')"
            assert (agent["status"], agent["skip_cause"], agent["error"]) == (
                "skipped",
                "routed",
                reason,
            )
            assert any(
                branch in line.split()[:2] and reason in line
                for line in completed.stderr.splitlines()
            )
    reply = result["agents"]["reply"]
    assert reply["status"] == "succeeded"
    assert any(p.startswith("Write a short, friendly reply") for p in sent)


def _label_of(branch: str) -> str:
    return next(label for label, name in BRANCHES.items() if name == branch)


def test_evaluator_optimizer_revises_until_the_critic_approves(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    rejected = {"approved": False, "feedback": "Name the battery life."}
    server.answer_in_turn(
        "Review this product description", [rejected, {"approved": True, "feedback": "Good."}]
    )
    db = tmp_path / "history.db"
    completed, result = run_example("evaluator_optimizer.yaml", server, db)

    assert completed.returncode == 0, completed.stderr
    assert result["status"] == "succeeded"
    writes = [p for p in prompts(server) if p.startswith("Write a three-sentence")]
    assert len(writes) == 2
    assert writes[0].endswith("Reviewer feedback on your last draft, if any: \n")
    assert writes[1].endswith(
        f"Reviewer feedback on your last draft, if any: {rejected['feedback']}\n"
    )
    draft = result["agents"]["draft"]
    assert (draft["loop"], draft["iteration"], draft["loop_end"]) == (
        "refine",
        2,
        "until held at iteration 2",
    )
    assert [i["name"] for i in draft["iterations"]] == ["draft#1", "draft#2"]
    assert draft["output"] == draft["iterations"][-1]["output"]
    (publish,) = [p for p in prompts(server) if p.startswith("Format this description")]
    assert draft["output"] in publish
    with sqlite3.connect(db) as connection:
        recorded = connection.execute(
            "SELECT agent, iteration, iterations, loop, loop_end, status FROM runs "
            "WHERE loop IS NOT NULL ORDER BY agent, iteration"
        ).fetchall()
    assert recorded == [
        ("critic", None, 2, "refine", "until held at iteration 2", "succeeded"),
        ("critic", 1, None, "refine", None, "succeeded"),
        ("critic", 2, None, "refine", None, "succeeded"),
        ("draft", None, 2, "refine", "until held at iteration 2", "succeeded"),
        ("draft", 1, None, "refine", None, "succeeded"),
        ("draft", 2, None, "refine", None, "succeeded"),
    ]
    env = cli_env(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
    shown = run_agentops("show-workflow-run", str(result["workflow_run_id"]), "--db", db, env=env)
    assert shown.returncode == 0, shown.stderr
    listed = run_agentops("list-workflow-runs", "--db", db, env=env).stdout.splitlines()
    assert listed[-1].split()[6] == "3/3"  # agents, not iterations
    assert "loop refine: 2 iterations, until held at iteration 2" in shown.stdout
    for name in ("draft#1", "critic#1", "draft#2", "critic#2"):
        assert f"  {name} " in shown.stdout
