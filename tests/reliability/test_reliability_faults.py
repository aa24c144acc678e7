"""Faults at the provider: 30 % of calls failing transiently still completes the work,
every call the server saw is one recorded attempt (same count, same order, same
outcome), the cost cap holds, and permanent errors are not retried and name the fix.
Runs go through a real ``agentops run`` process; the server runs in this one."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import Fault, OpenAITestServer, RecordedRequest
from tests.support.reliability import (
    KEY,
    KEY_ENV,
    agent_of,
    agent_runs,
    attempts_of,
    json_of,
    layered_agents,
    run_agentops,
    workflow_runs,
    write_workflow,
)

AGENTS = layered_agents(
    [[f"gather{n}" for n in range(20)], ["merge_a", "merge_b", "merge_c"], ["report"]]
)
PRICES = {"gpt-4o-mini": {"input": 1000.0, "output": 4000.0}}  # dear, so a few calls reach the cap


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def requests_by_agent(server: OpenAITestServer) -> dict[str, list[RecordedRequest]]:
    grouped: dict[str, list[RecordedRequest]] = defaultdict(list)
    for request in sorted(server.requests, key=lambda r: r.started_at):
        grouped[agent_of(request.body) or "?"].append(request)
    return grouped


def expected_outcome(request: RecordedRequest) -> tuple[str, int | None]:
    """What the client must have recorded for a request, from what the server sent back:
    a whole answer (usage is set only then), an error status, or nothing usable."""
    if request.usage is not None:
        return ("succeeded", None)
    return ("failed", request.status if request.status and request.status >= 400 else None)


def test_thirty_percent_transient_faults_complete_and_every_attempt_is_recorded(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.fault_rate = 0.3
    # Besides the random ones: two calls that never answer, a dropped connection, a cut stream.
    server.inject(Fault(kind="hang", seconds=30), times=2)
    server.inject(Fault(kind="drop"), times=1)
    server.inject(Fault(kind="truncate"), times=1)
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{**a, "timeout": 1.0} for a in AGENTS],
        policies={"retries": 10, "backoff": {"base": 0.01, "max": 0.05}},
    )
    db = tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    assert server.faults_injected >= 5, "the fault rate did not apply"
    assert {r.fault.kind for r in server.requests if r.fault} >= {
        "status",
        "hang",
        "drop",
        "truncate",
    }
    (run,) = workflow_runs(db)
    recorded = agent_runs(db, int(run["id"]))
    by_agent = requests_by_agent(server)
    assert sorted(by_agent) == sorted(recorded)
    for name, row in recorded.items():
        assert row["status"] == "succeeded" and row["output"], name
        attempts = attempts_of(db, int(row["id"]))
        sent = by_agent[name]
        assert [a["number"] for a in attempts] == list(range(1, len(sent) + 1)), name
        assert [(a["status"], a["http_status"]) for a in attempts] == [
            expected_outcome(r) for r in sent
        ], name
    print(
        f"faults injected by the server: {server.faults_injected} of {len(server.requests)} calls"
    )


def test_the_cost_cap_holds_under_faults(tmp_path: Path, server: OpenAITestServer) -> None:
    server.fault_rate = 0.3
    cap = 0.5
    agents = [{"name": f"essay{n}", "max_tokens": 60} for n in range(12)]
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents,
        prices=PRICES,
        policies={"retries": 8, "max_concurrency": 6, "cost_cap": 10.0},
    )
    db = tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db, "--cost-cap", str(cap), "--json")
    assert completed.returncode == 1, completed.stderr  # some agents were skipped at the cap
    result = json.loads(completed.stdout)
    assert result["cost"] <= cap
    (run,) = workflow_runs(db)
    recorded = agent_runs(db, int(run["id"]))
    spent = sum(
        a["cost"] or 0.0 for row in recorded.values() for a in attempts_of(db, int(row["id"]))
    )
    assert spent <= cap
    price = PRICES["gpt-4o-mini"]
    billed = sum(
        (r.usage["prompt_tokens"] * price["input"] + r.usage["completion_tokens"] * price["output"])
        / 1e6
        for r in server.requests
        if r.usage
    )
    assert billed <= cap  # what the provider would charge, by its own count
    statuses = {row["status"] for row in recorded.values()}
    assert "succeeded" in statuses and "skipped" in statuses
    assert all(
        row["error"].startswith("cost cap")
        for row in recorded.values()
        if row["status"] == "skipped"
    )


@pytest.mark.parametrize(
    ("status", "names_the_fix"), [(401, KEY_ENV), (400, "400")], ids=["401", "400"]
)
def test_permanent_errors_are_not_retried_and_name_the_fix(
    tmp_path: Path, server: OpenAITestServer, status: int, names_the_fix: str
) -> None:
    server.inject(Fault(kind="status", status=status), times=50)
    flow = write_workflow(
        tmp_path / "flow.yaml", server.base_url, [{"name": "only"}], policies={"retries": 8}
    )
    db = tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db)
    assert completed.returncode == 1
    assert len(server.requests) == 1  # not retried
    output = completed.stdout + completed.stderr
    assert names_the_fix in output and "Traceback" not in output
    assert KEY not in output
    (run,) = workflow_runs(db)
    row = agent_runs(db, int(run["id"]))["only"]
    assert row["status"] == "failed" and names_the_fix in row["error"]
    assert [(a["status"], a["http_status"]) for a in attempts_of(db, int(row["id"]))] == [
        ("failed", status)
    ]
    shown = json_of(run_agentops("show-workflow-run", str(run["id"]), "--json", "--db", db))
    assert names_the_fix in str(shown)
