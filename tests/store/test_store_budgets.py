"""Named budgets on both stores: reserve → settle in the store, waiting while only other holds
stand in the way, refusing what can never fit; eight processes drawing at once never pass the
cap; a process killed holding reservations has them charged at their worst case after the
grace period; periods; and the commands (budget set/list/show, --budget on run, resume, batch
and resume-batch, plan --budget)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.errors import ConfigurationError, UsageError
from agentops.runtime.budget import InProcessBudget
from agentops.runtime.limits import InProcessCallLimits
from agentops.store import budgets
from agentops.store.budgets import StoreBudget, budget_statuses, period_start, set_budget
from agentops.store.stores import open_database
from agentops.testing.server import OpenAITestServer
from tests.support.budget import draw
from tests.support.postgres import PASSWORD
from tests.support.reliability import (
    KEY,
    KEY_ENV,
    ROOT,
    agent_of,
    cli_env,
    run_agentops,
    task_for,
    write_workflow,
)
from tests.support.store import execute, rows

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}


def invoke(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert PASSWORD not in result.output
    return result


def test_reserve_waits_for_holds_and_refuses_what_never_fits(db: str) -> None:
    with open_database(db) as store:
        set_budget(store, "research", 1.0)

        async def scenario() -> list[str]:
            budget = StoreBudget(store, "research")
            log: list[str] = []
            first = await budget.reserve(0.4)
            second = await budget.reserve(0.4)
            assert first is not None and second is not None
            assert budget_statuses(store, "research")[0].reserved == pytest.approx(0.8)

            async def third() -> None:
                hold = await budget.reserve(0.4)  # 0.8 held: waits for a settle
                log.append("third reserved")
                assert hold is not None
                await budget.settle(hold, 0.3)

            waiting = asyncio.create_task(third())
            await asyncio.sleep(0.1)
            log.append("first settles")
            await budget.settle(first, 0.1)
            await budget.settle(first, 0.1)  # a second settle does nothing
            await waiting
            await budget.settle(second, 0.4)
            assert await budget.reserve(0.21) is None  # 0.8 spent: it cannot fit, ever
            assert budget.refusal == "budget research"
            budget.close()
            return log

        assert asyncio.run(scenario()) == ["first settles", "third reserved"]
        (status,) = budget_statuses(store, "research")
        assert (status.spent, status.reserved, status.charged) == (pytest.approx(0.8), 0.0, 0.0)
        assert status.remaining == pytest.approx(0.2)


def test_a_run_holds_both_its_cap_and_the_budget(db: str) -> None:
    with open_database(db) as store:
        set_budget(store, "team", 10.0)

        async def scenario() -> None:
            shared = StoreBudget(store, "team")
            limits = InProcessCallLimits.create(4, 0.5, shared=shared)
            budget = limits.budget
            assert budget.capped and budget.cap == 0.5
            hold = await budget.reserve(0.3)
            assert hold is not None
            assert await budget.reserve(0.6) is None  # the run's own cap refuses
            assert budget.refusal == "cost cap"
            await budget.settle(hold, 0.2)
            assert budget.spent == pytest.approx(0.2)
            set_budget(store, "team", 0.25)  # lowered under way: the budget refuses now
            assert await budget.reserve(0.1) is None and budget.refusal == "budget team"
            assert isinstance(getattr(budget, "own", None), InProcessBudget)
            assert budget.own.reserved == 0  # type: ignore[attr-defined]  # its hold was given back
            shared.close()

        asyncio.run(scenario())


def test_eight_processes_never_pass_the_budget(db: str) -> None:
    cap, calls = 4.0, 150  # ~1,200 attempts of 0.01-0.05 worst case: far more than fits
    with open_database(db) as store:
        set_budget(store, "shared", cap)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(8, mp_context=context) as pool:
        go = manager.Event()
        futures = [pool.submit(draw, db, "shared", calls, seed, go) for seed in range(8)]
        go.set()
        outcomes = [f.result(timeout=300) for f in futures]  # re-raises any lock error
    spent = sum(o["spent"] for o in outcomes)
    assert sum(o["granted"] + o["refused"] for o in outcomes) == 8 * calls
    assert sum(o["refused"] for o in outcomes) > 0 and spent <= cap
    with open_database(db) as store:
        (status,) = budget_statuses(store, "shared")
    assert status.reserved == 0 and status.spent == pytest.approx(spent)
    assert status.spent > cap - 0.05  # refused only when the worst case did not fit
    held = rows(db, "SELECT count(*) FROM budget_holds WHERE state <> 'settled'")[0][0]
    assert held == 0


def test_a_killed_holders_reservations_count_at_worst_case_after_the_grace_period(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_database(db) as store:
        set_budget(store, "research", 1.0)
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.support.budget", db, "research", "3", "0.2"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**cli_env(), "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with open_database(db) as store:
        (status,) = budget_statuses(store, "research")
        assert (status.reserved, status.charged) == (pytest.approx(0.6), 0.0)  # within grace
        monkeypatch.setattr(budgets, "GRACE_SECONDS", 0.0)
        (status,) = budget_statuses(store, "research")
        assert (status.spent, status.charged, status.reserved) == (
            pytest.approx(0.6),
            pytest.approx(0.6),
            0.0,
        )
        shown = json.loads(invoke("budget", "show", "research", "--db", db, "--json").stdout)
        assert shown["charged_dead"] == pytest.approx(0.6) and shown["remaining"] == pytest.approx(
            0.4
        )


def test_periods_reset_at_utc_boundaries(db: str) -> None:
    monday = 1_714_348_800.0  # 2024-04-29T00:00:00Z, a Monday
    assert period_start("day", monday - 1) == "2024-04-28"
    assert period_start("day", monday) == "2024-04-29"
    assert period_start("week", monday + 6 * 86_400) == "2024-04-29"
    assert period_start("month", monday + 2 * 86_400) == "2024-05"
    assert period_start("total", monday) == ""
    with open_database(db) as store:
        set_budget(store, "daily", 1.0, "day")
        (status,) = budget_statuses(store, "daily")
        budget_id = rows(db, "SELECT id FROM budgets")[0][0]
        execute(  # spent yesterday: today's period does not count it
            db,
            "INSERT INTO budget_holds (budget_id, period_start, amount, spent, state, reserved_at) "
            "VALUES (?, '2000-01-01', 0.9, 0.9, 'settled', '2000-01-01T12:00:00+00:00')",
            budget_id,
        )
        (status,) = budget_statuses(store, "daily")
        assert status.spent == 0.0 and status.period_start != "2000-01-01"


def test_budget_commands_and_bad_input(db: str) -> None:
    assert invoke("budget", "list", "--db", db).stdout.startswith("No budgets yet")
    made = invoke("budget", "set", "research", "--cap", "25", "--period", "week", "--db", db)
    assert made.exit_code == 0 and "Budget research: $25.00 per week period" in made.stdout
    invoke("budget", "set", "ops", "--cap", "5", "--db", db)
    listed = json.loads(invoke("budget", "list", "--db", db, "--json").stdout)
    assert [(b["name"], b["cap"], b["period"]) for b in listed] == [
        ("ops", 5.0, "total"),
        ("research", 25.0, "week"),
    ]
    missing = invoke("budget", "show", "nope", "--db", db)
    assert missing.exit_code == 2 and "no budget named 'nope'" in missing.stderr
    assert "agentops budget set nope --cap USD" in missing.stderr
    bad = invoke("budget", "set", "no spaces", "--cap", "1", "--db", db)
    assert bad.exit_code == 2 and "use letters, digits" in bad.stderr
    with open_database(db) as store, pytest.raises(UsageError, match="finite"):
        set_budget(store, "x", float("inf"))
    with open_database(db) as store, pytest.raises(ConfigurationError, match="no budget named"):
        StoreBudget(store, "nope")


def test_runs_draw_on_the_budget_and_plan_says_what_is_left(
    db: str, tmp_path: Path, server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)  # plan prices a provider it could reach
    agents = [{"name": n, "task": task_for(n), "max_tokens": 1000} for n in ("a", "b", "c")]
    for n, agent in enumerate(agents[1:]):
        agent["depends_on"] = agents[n]["name"]
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents, prices=PRICES)
    invoke("budget", "set", "research", "--cap", "1", "--db", db)
    planned = json.loads(invoke("plan", flow, "--budget", "research", "--db", db, "--json").stdout)
    assert planned["budget"]["fits"] is True and planned["budget"]["remaining"] == 1.0
    # Room for the first agent's worst case only: b's worst case is larger (a's answer is in it).
    first = planned["agents"][0]["worst_case_cost"]
    cap = f"{first + 0.00001:.6f}"
    invoke("budget", "set", "research", "--cap", cap, "--db", db)
    planned = json.loads(invoke("plan", flow, "--budget", "research", "--db", db, "--json").stdout)
    assert planned["budget"]["fits"] is False and planned["worst_case_total"] > float(cap)
    plain = invoke("plan", flow, "--budget", "research", "--db", db)
    assert f"Budget research: ${float(cap):.4f} left of" in plain.stdout
    assert "does NOT fit" in plain.stdout

    env = cli_env(AGENTOPS_DB=db)
    completed = run_agentops("run", flow, "--budget", "research", "--json", env=env)
    result = json.loads(completed.stdout)
    statuses = {name: a["status"] for name, a in result["agents"].items()}
    assert completed.returncode == 1 and statuses["a"] == "succeeded"
    skipped = [a for a in result["agents"].values() if a["status"] == "skipped"]
    assert skipped and skipped[0]["error"].startswith("budget research")
    (status,) = json.loads(invoke("budget", "list", "--db", db, "--json").stdout)
    assert status["spent"] <= float(cap) and status["runs"] == 1 and status["reserved"] == 0
    assert agent_of(server.requests[0].body) == "a"


@pytest.mark.parametrize("limit", ["cost_cap", "budget", "both"])
def test_batch_rows_the_budget_has_no_room_for_are_skipped_as_under_the_cost_cap(
    db: str, tmp_path: Path, server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    """A row whose first call a named budget refused is skipped, not failed, as one the cost
    cap refused is: in the summary, its line, and the batch's counts in the history."""
    from agentops.batch.runner import arun_batch
    from agentops.runtime.events import RunStatus
    from agentops.ui.batch import summary_lines

    monkeypatch.setenv(KEY_ENV, KEY)
    tiny = 0.000001  # below any call's worst case
    agents = [{"name": "echo", "task": task_for("echo", "say {{ inputs.word }}")}]
    flow = write_workflow(
        tmp_path / "flow.yaml", server.base_url, agents, inputs={"word": "x"}, prices=PRICES
    )
    data = tmp_path / "rows.jsonl"
    data.write_text('{"word": "a"}\n{"word": "b"}\n', encoding="utf-8")
    with open_database(db) as store:
        set_budget(store, "research", tiny)
    limits: dict[str, Any] = {
        "cost_cap": {"cost_cap": tiny},
        "budget": {"budget": "research"},
        "both": {"budget": "research", "cost_cap": 1.0},  # the budget refuses
    }[limit]

    summary = asyncio.run(arun_batch(flow, data=data, db=db, **limits))

    assert (summary.succeeded, summary.failed, summary.skipped) == (0, 0, 2)
    assert summary.status is RunStatus.FAILED and server.requests == []
    refused = {
        "cost_cap": "the cost cap",
        "budget": "budget research",
        "both": "the cost cap or budget research",
    }[limit]
    assert f"0 failed, 2 skipped by {refused}, 0 not run" in summary_lines(summary)[0]
    (counts,) = rows(db, "SELECT rows_succeeded, rows_failed, rows_skipped FROM batches")
    assert tuple(counts) == (0, 0, 2)


def test_a_fan_out_whose_items_the_budget_refused_names_the_budget(
    db: str, tmp_path: Path, server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.api import run
    from tests.support.fan_out import SECTIONS, answer_the_flow

    monkeypatch.setenv(KEY_ENV, KEY)
    answer_the_flow(server, items=3)
    agents = [
        {"name": "planner", "task": "Outline a report.", "output": {"schema": SECTIONS}},
        # A worst case of $0.20 an item: the budget has room for the planner's only.
        {
            "name": "writer",
            "for_each": "planner.output.sections",
            "task": "Write {{ item.title }}.",
            "max_tokens": 100_000,
        },
    ]
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents, prices=PRICES)
    with open_database(db) as store:
        set_budget(store, "research", 0.05)
    writer = run(flow, db=db, budget="research").agents["writer"]
    assert (
        writer.error == "budget research: 2 of 3 items not run; first: writer[0]: budget research"
    )
    assert [i.error for i in writer.instances or []] == ["budget research"]
    assert len(server.requests) == 1  # the planner's


def test_resume_and_resume_batch_draw_on_the_budget_named_over_the_workflows(
    db: str, tmp_path: Path, server: OpenAITestServer
) -> None:
    agents = [
        {"name": "a", "task": task_for("a", "[{{ inputs.topic }}] a.")},
        {"name": "b", "task": task_for("b", "[{{ inputs.topic }}] b."), "depends_on": "a"},
    ]
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents,
        policies={"budget": "closed"},
        prices=PRICES,
        inputs={"topic": "t0"},
    )
    invoke("budget", "set", "closed", "--cap", "0", "--db", db)  # nothing ever fits
    invoke("budget", "set", "open", "--cap", "5", "--db", db)
    env = cli_env(AGENTOPS_DB=db)

    def agentops(*args: str | Path, code: int) -> Any:
        completed = run_agentops(*args, "--json", env=env)
        assert completed.returncode == code, completed.stderr
        return json.loads(completed.stdout)

    def spent() -> dict[str, tuple[float, int]]:
        listed = agentops("budget", "list", code=0)
        return {b["name"]: (b["spent"], b["runs"]) for b in listed}

    first = agentops("run", flow, code=1)  # policies.budget: closed
    assert first["agents"]["a"]["error"].startswith("budget closed") and server.requests == []
    resumed = agentops("resume", str(first["workflow_run_id"]), "--budget", "open", code=0)
    assert resumed["status"] == "succeeded"
    assert [agent_of(r.body) for r in server.requests] == ["a", "b"]
    assert spent()["open"][0] > 0 and spent()["open"][1] == 1

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"topic": f"t{n}"}) + "\n" for n in (1, 2)))
    batch = agentops("batch", flow, "--data", data, code=1)
    # Rows the budget had no room for are skipped, as under the cost cap.
    assert (batch["succeeded"], batch["failed"], batch["skipped"]) == (0, 0, 2)
    assert len(server.requests) == 2
    again = agentops("resume-batch", str(batch["batch_id"]), "--budget", "open", code=0)
    assert (again["succeeded"], again["failed"]) == (2, 0) and len(server.requests) == 6
    after = spent()
    assert after["closed"][0] == 0 and after["open"][1] == 3
    assert after["open"][0] == pytest.approx(float(again["cost"]) + float(resumed["cost"]))
