"""Batches on a real Ray cluster (a head and a worker node on 127.0.0.1): every row's agent runs
as Ray tasks, the driver recording them; one ledger holding the cap across the nodes; a node
lost mid-batch and a driver killed mid-batch. Against the test server, the history read back
with ``sqlite3``."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from agentops.batch.runner import BatchSummary, arun_batch
from agentops.runtime.events import AgentFinished, AgentResult, RunStatus, WorkflowResult
from agentops.testing.server import Fault, OpenAITestServer
from tests.support.ray_cluster import RAY_ENV, LocalCluster
from tests.support.reliability import (
    KEY,
    KEY_ENV,
    cli_env,
    run_agentops,
    start_agentops,
    task_for,
    wait_until,
    write_workflow,
)

pytestmark = pytest.mark.ray

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}  # USD per million tokens


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def topic_flow(tmp_path: Path, base_url: str, **policies: Any) -> Path:
    """One agent per row; the row's topic opens its task, so a request traces back to its row."""
    return write_workflow(
        tmp_path / "flow.yaml",
        base_url,
        [{"name": "answer", "task": task_for("answer", "[{{ inputs.topic }}] answer it.")}],
        inputs={"topic": None},
        prices=PRICES,
        policies={"max_tokens": 100, **policies},
    )


def rows(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"topic": f"t{n}"}) + "\n" for n in range(1, count + 1)))
    return path


def topic_of(body: dict[str, Any]) -> str:
    content = str((body.get("messages") or [{}])[-1].get("content", ""))
    return content.split("[", 1)[1].split("]", 1)[0]


class Rows:
    """The batch's observer and subscriber: each row's settled agents (with their nodes)."""

    def __init__(self) -> None:
        self.agents: list[AgentResult] = []
        self.finished: list[int] = []
        self.on_agent: Any = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, AgentFinished):
            self.agents.append(event.result)
            if self.on_agent is not None:
                self.on_agent(event.result)

    def batch_started(self, *_: Any) -> None: ...

    def row_finished(self, row: int, status: str, result: WorkflowResult) -> None:
        self.finished.append(row)

    def batch_finished(self, summary: BatchSummary) -> None: ...


def run_batch(flow: Path, data: Path, watch: Rows, **options: Any) -> BatchSummary:
    return asyncio.run(
        arun_batch(flow, data=data, subscribers=[watch], observer=watch, executor="ray", **options)
    )


def history(db: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of the history, read only (a file not there yet is not created)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


def test_a_batch_spreads_over_both_nodes_and_its_results_come_out_in_input_order(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    watch = Rows()
    with OpenAITestServer(latency=0.2) as server:
        flow = topic_flow(tmp_path, server.base_url)
        out, db = tmp_path / "results.jsonl", tmp_path / "history.db"
        summary = run_batch(
            flow, rows(tmp_path, 12), watch, out=out, db=db, ray_address=ray_cluster.address
        )
        topics = sorted(topic_of(r.body) for r in server.requests)

    assert summary.status is RunStatus.SUCCEEDED and summary.succeeded == 12
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in results] == list(range(1, 13))
    assert all(f"[t{r['row']}]" in r["outputs"]["answer"] for r in results)
    assert topics == sorted(f"t{n}" for n in range(1, 13))  # each row called once
    assert {a.node for a in watch.agents} == set(ray_cluster.node_ids)
    # Each result line names the node its agent ran on, as the history recorded it.
    assert all(len(r["nodes"]) == 1 and r["nodes"][0] in ray_cluster.node_ids for r in results)
    assert {r["nodes"][0] for r in results} == set(ray_cluster.node_ids)
    recorded = history(db, "SELECT batch_row, status FROM workflow_runs ORDER BY batch_row")
    assert recorded == [(n, "succeeded") for n in range(1, 13)]
    assert summary.cost == pytest.approx(sum(a.cost or 0 for a in watch.agents))


def overlapping_on_two_nodes(agents: list[AgentResult]) -> bool:
    calls = [(a.node, t.started_at, t.started_at + t.duration) for a in agents for t in a.attempts]
    return any(
        one[0] != other[0] and one[1] < other[2] and other[1] < one[2]
        for one in calls
        for other in calls
    )


def test_the_cap_holds_across_the_nodes_with_calls_in_flight_on_both(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    watch = Rows()
    # A call's worst case is about $0.00026 and it costs about $0.000045: two calls fit in
    # flight until about 15 rows are paid for, one at a time after that, then none.
    cap = 0.0012
    with OpenAITestServer(latency=0.5) as server:
        summary = run_batch(
            topic_flow(tmp_path, server.base_url),
            rows(tmp_path, 30),
            watch,
            cost_cap=cap,
            db=tmp_path / "history.db",
            ray_address=ray_cluster.address,
        )
        calls = len(server.requests)

    assert summary.cost <= cap
    assert summary.skipped > 0 and summary.succeeded >= 10
    assert summary.succeeded + summary.skipped == 30 and calls == summary.succeeded
    ran = [a for a in watch.agents if a.attempts]
    assert overlapping_on_two_nodes(ran)
    assert summary.cost == pytest.approx(sum(a.cost or 0 for a in ran))


def test_a_worker_node_lost_mid_batch_the_batch_completes_under_the_cap_each_row_once(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    doomed, doomed_id = ray_cluster.add_node()  # three nodes; this one is killed mid-call
    watch = Rows()
    killed: list[float] = []

    def kill_soon(agent: AgentResult) -> None:
        # Its worker is warm and has begun its next row's second-long call within milliseconds.
        if agent.node == doomed_id and not killed:
            killed.append(time.time())
            asyncio.get_running_loop().call_later(0.5, ray_cluster.remove_node, doomed, doomed_id)

    watch.on_agent = kill_soon
    cap = 0.05
    db = tmp_path / "history.db"
    with OpenAITestServer(latency=1.0) as server:
        summary = run_batch(
            topic_flow(tmp_path, server.base_url),
            rows(tmp_path, 15),
            watch,
            cost_cap=cap,
            db=db,
            ray_address=ray_cluster.address,
        )
        topics = [topic_of(r.body) for r in server.requests]

    assert killed, "the node was not killed"
    assert summary.status is RunStatus.SUCCEEDED and summary.succeeded == 15
    assert summary.cost <= cap
    recorded = history(db, "SELECT batch_row, status FROM workflow_runs ORDER BY batch_row")
    assert recorded == [(n, "succeeded") for n in range(1, 16)]  # each row recorded once
    assert len(history(db, "SELECT id FROM runs")) == 15
    # At most the calls the lost node had in flight (one: one CPU) were made twice.
    assert len(topics) <= 15 + 1 and set(topics) == {f"t{n}" for n in range(1, 16)}
    moved = [a for a in watch.agents if any(t.error_type == "NodeDiedError" for t in a.attempts)]
    assert len(moved) == 1 and moved[0].node in ray_cluster.node_ids  # finished on a live node
    assert any(a.node == doomed_id for a in watch.agents)  # rows ran there before it was lost
    lost = [t for t in moved[0].attempts if t.error_type == "NodeDiedError"]
    assert len(lost) == 1 and [t.number for t in moved[0].attempts] == [1, 2]
    # The lost call is charged at its reserved worst case (about $0.00026), never as zero...
    assert lost[0].cost is not None and lost[0].cost > 0.0002
    assert "charged its reserved worst case" in (lost[0].error or "")
    # ...in the ledger and in the history alike.
    recorded_cost = history(db, "SELECT SUM(cost) FROM runs")[0][0]
    assert summary.cost == pytest.approx(recorded_cost)


def test_a_driver_killed_mid_batch_is_resumed_on_the_cluster(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    db, out = tmp_path / "history.db", tmp_path / "results.jsonl"
    env = cli_env(RAY_ADDRESS=ray_cluster.address, **RAY_ENV)
    with OpenAITestServer(latency=0.5) as server:
        flow = topic_flow(tmp_path, server.base_url, executor="ray", cost_cap=1.0)
        data = rows(tmp_path, 10)
        driver = start_agentops("batch", flow, "--data", data, "--db", db, env=env)

        def succeeded() -> int:
            query = "SELECT COUNT(*) FROM workflow_runs WHERE status = 'succeeded'"
            try:
                return int(history(db, query)[0][0])
            except sqlite3.OperationalError:  # not there, or not migrated, yet
                return 0

        try:
            wait_until(lambda: succeeded() >= 3, timeout=60)
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
        assert succeeded() < 10

        completed = run_agentops(
            "resume-batch", "1", "--db", db, "--out", out, "--json", env=env, timeout=180
        )
        topics = [topic_of(r.body) for r in server.requests]

    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["status"] == "succeeded" and summary["reused"] >= 3
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["row"], r["status"]) for r in results] == [(n, "succeeded") for n in range(1, 11)]
    done = history(
        db, "SELECT batch_row FROM workflow_runs WHERE status = 'succeeded' ORDER BY batch_row"
    )
    assert done == [(n,) for n in range(1, 11)]  # one succeeded run per row
    # Calls made twice: at most those in flight when the driver died (two nodes, one CPU each).
    assert len(topics) <= 10 + 2 and set(topics) == {f"t{n}" for n in range(1, 11)}


def test_a_rate_limit_on_one_node_pauses_the_provider_for_the_whole_batch(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    watch = Rows()
    with OpenAITestServer(latency=0.1) as server:
        # Row 5's first call: by then both nodes' workers are warm (their first call imports
        # the SDK, after reserving).
        server.inject(
            Fault(kind="status", status=429, retry_after=1.5), match=lambda b: topic_of(b) == "t5"
        )
        summary = run_batch(
            topic_flow(tmp_path, server.base_url),
            rows(tmp_path, 30),
            watch,
            db=tmp_path / "history.db",
            ray_address=ray_cluster.address,
        )
        refused = next(r for r in server.requests if r.status == 429)
        later = [r.started_at - refused.started_at for r in server.requests if r is not refused]

    assert summary.status is RunStatus.SUCCEEDED and summary.succeeded == 30
    assert summary.pauses == 1 and summary.paused_seconds == pytest.approx(1.5, abs=0.1)
    # Every call that reserved after the pause reached the ledger waited it out, on either
    # node (unshared, the other node would have made a call every 0.15 s): past the moment a
    # call already answered by the ledger may still start on this busy machine, none started.
    assert not [t for t in later if 0.8 < t < 1.4] and max(later) > 1.4
    retried = [a for a in watch.agents if len(a.attempts) == 2]
    assert len(retried) == 1 and retried[0].attempts[0].http_status == 429
