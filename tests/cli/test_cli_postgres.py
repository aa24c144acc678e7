"""Every command with ``--db postgresql://…``: real ``agentops`` processes over real HTTP to
the test server, recording into the session's PostgreSQL server: run, resume, batch,
resume-batch, every history command, costs and the web view; the URL's password never in
their output. An unreachable server stops a run with exit 2 before any model call."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from agentops.store.location import locate
from agentops.store.stores import open_database
from agentops.testing.server import Fault, OpenAITestServer
from agentops.web.serve import READER_CONNECTIONS
from tests.support.postgres import PASSWORD, free_port
from tests.support.reliability import (
    agent_of,
    cli_env,
    run_agentops,
    start_agentops,
    task_for,
    write_workflow,
)
from tests.support.store import rows

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}


def flow(tmp_path: Path, server: OpenAITestServer) -> Path:
    agents = [
        {"name": "answer", "task": task_for("answer", "[{{ inputs.topic }}] answer it.")},
        {
            "name": "check",
            "depends_on": "answer",
            "task": task_for("check", "[{{ inputs.topic }}] check it."),
        },
    ]
    return write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents,
        inputs={"topic": "t0"},
        prices=PRICES,
    )


def agentops(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    completed = run_agentops(*args, env=env)
    assert PASSWORD not in completed.stdout + completed.stderr, args
    return completed


def json_out(*args: str | Path, code: int = 0) -> Any:
    completed = agentops(*args, "--json")
    assert completed.returncode == code, completed.stderr
    return json.loads(completed.stdout)


def test_every_command_works_on_postgresql(
    tmp_path: Path, server: OpenAITestServer, postgres_url: str
) -> None:
    workflow = flow(tmp_path, server)
    db = ("--db", postgres_url)
    failing_check = lambda body: agent_of(body) == "check"  # noqa: E731
    server.inject(Fault(kind="status", status=400), times=1, match=failing_check)

    first = json_out("run", workflow, *db, code=1)
    assert first["status"] == "failed" and first["workflow_run_id"] == 1
    resumed = json_out("resume", "1", *db)
    assert resumed["status"] == "succeeded" and resumed["workflow_run_id"] == 2
    assert [agent_of(r.body) for r in server.requests] == ["answer", "check", "check"]

    listed = json_out("list-workflow-runs", *db)
    assert [(r["id"], r["status"], r["resumed_from"]) for r in listed] == [
        (2, "succeeded", 1),
        (1, "failed", None),
    ]
    detail = json_out("show-workflow-run", "2", *db)
    assert [a["agent"] for a in detail["agents"]] == ["answer", "check"]
    assert [r["agent"] for r in json_out("list-runs", *db)][:2] == ["check", "answer"]
    assert len(json_out("show-runs", "--workflow", "reliability", *db)) == 4
    assert json_out("show-run", "1", *db)["output"]
    costs = json_out("costs", "--by", "model", *db)
    assert costs["groups"] and costs["groups"][0]["cost"] > 0

    # A batch whose second row fails once, then resumed: only that row runs again.
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"topic": f"t{n}"}) + "\n" for n in (1, 2, 3)))
    server.inject(
        Fault(kind="status", status=400),
        times=1,
        match=lambda body: failing_check(body) and "[t2]" in str(body["messages"]),
    )
    batch = json_out("batch", workflow, "--data", data, *db, code=1)
    assert batch["batch_id"] == 1 and (batch["succeeded"], batch["failed"]) == (2, 1)
    again = json_out("resume-batch", "1", *db)
    assert (again["succeeded"], again["failed"]) == (3, 0)
    assert json_out("show-batch", "1", *db)["status"] == "succeeded"
    assert [b["id"] for b in json_out("list-batches", *db)] == [1]

    # Plain output names the database without its password.
    plain = agentops("list-workflow-runs", *db)
    assert plain.returncode == 0 and "reliability" in plain.stdout
    run = agentops("run", workflow, "--input", "topic=t9", *db)
    assert run.returncode == 0
    assert f"in {locate(postgres_url)} (agentops show-workflow-run" in run.stdout
    # AGENTOPS_DB works as --db does.
    by_env = run_agentops("list-workflow-runs", "--json", env=cli_env(AGENTOPS_DB=postgres_url))
    assert by_env.returncode == 0 and len(json.loads(by_env.stdout)) == len(
        rows(postgres_url, "SELECT id FROM workflow_runs")
    )


def test_the_web_view_reads_postgresql(
    tmp_path: Path, server: OpenAITestServer, postgres_url: str
) -> None:
    assert agentops("run", flow(tmp_path, server), "--db", postgres_url).returncode == 0
    process = start_agentops("ui", "--db", postgres_url, "--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert PASSWORD not in line
        assert f"AgentOps history view of {locate(postgres_url)} at http://" in line
        address = re.search(r"http://\S+/", line)
        assert address is not None
        page = urllib.request.urlopen(address.group(0), timeout=10).read().decode()
        assert "reliability" in page and PASSWORD not in page
        run_page = urllib.request.urlopen(address.group(0) + "runs/1", timeout=10).read().decode()
        assert "answer" in run_page and "check" in run_page
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_web_view_serves_requests_in_parallel_on_a_few_connections(
    tmp_path: Path, server: OpenAITestServer, postgres_url: str
) -> None:
    assert agentops("run", flow(tmp_path, server), "--db", postgres_url).returncode == 0
    process = start_agentops("ui", "--db", postgres_url, "--port", "0")
    locker = psycopg.connect(postgres_url)
    try:
        assert process.stdout is not None
        address = re.search(r"http://\S+/", process.stdout.readline().decode())
        assert address is not None
        base = address.group(0)

        def get(path: str) -> tuple[int, str]:
            with urllib.request.urlopen(base + path, timeout=60) as response:
                return response.status, response.read().decode()

        # The approvals page's query waits on a lock this test holds: a slow query.
        locker.execute("LOCK TABLE approvals IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(17) as threads:
            try:
                blocked = threads.submit(get, "approvals")
                deadline = time.monotonic() + 30
                while not _waiting_on_a_lock(postgres_url):
                    assert time.monotonic() < deadline and not blocked.done()
                    time.sleep(0.05)
                began = time.monotonic()
                pages = list(threads.map(get, ["", "runs/1", "runs/1/agents/answer"] * 5 + [""]))
                took = time.monotonic() - began
                assert all(status == 200 for status, _ in pages)
                assert all("reliability" in body or "answer" in body for _, body in pages)
                assert not blocked.done() and took < 20  # served while the slow one waited
                locker.rollback()
                status, body = blocked.result(timeout=30)
                assert status == 200 and "Approvals" in body

                # Twelve slow requests at once: they wait on the pool's connections, no more.
                locker.execute("LOCK TABLE approvals IN ACCESS EXCLUSIVE MODE")
                slow = [threads.submit(get, "approvals") for _ in range(12)]
                deadline = time.monotonic() + 30
                while _waiting_on_a_lock(postgres_url) < READER_CONNECTIONS:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                time.sleep(0.5)  # time for any further connection to show
                assert _sessions(postgres_url) == READER_CONNECTIONS
                locker.rollback()
                assert [f.result(timeout=30)[0] for f in slow] == [200] * 12
            finally:  # the slow requests end before the threads are joined
                locker.rollback()
    finally:
        locker.close()
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "error" not in err.decode().lower() and "Traceback" not in err.decode()


def _waiting_on_a_lock(url: str) -> int:
    return int(
        rows(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agentops' "
            "AND wait_event_type = 'Lock' AND datname = current_database()",
        )[0][0]
    )


def _sessions(url: str) -> int:
    return int(
        rows(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'agentops' "
            "AND datname = current_database()",
        )[0][0]
    )


def test_an_unreachable_server_stops_a_run_before_any_call(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    port = free_port()
    url = f"postgresql://agentops:{PASSWORD}@127.0.0.1:{port}/history"
    started = time.monotonic()
    completed = agentops("run", flow(tmp_path, server), "--db", url)
    assert completed.returncode == 2
    assert completed.stderr.startswith(
        f"error: cannot reach the history database postgresql://agentops@127.0.0.1:{port}/history "
        f"at 127.0.0.1:{port} ("
    )
    assert len(completed.stderr.strip().splitlines()) == 1
    assert server.requests == [] and time.monotonic() - started < 30
    listed = agentops("list-runs", "--db", url)
    assert listed.returncode == 2 and f"127.0.0.1:{port}" in listed.stderr


def test_a_server_lost_mid_run_stops_it_and_resume_finishes_it(
    tmp_path: Path, postgres_url: str
) -> None:
    with OpenAITestServer(latency=1.0) as slow:
        agents = [
            {"name": "first", "task": task_for("first")},
            {"name": "second", "task": task_for("second"), "depends_on": "first"},
        ]
        workflow = write_workflow(tmp_path / "flow.yaml", slow.base_url, agents)
        open_database(postgres_url).close()  # migrated: the tables are there to watch
        running = start_agentops("run", workflow, "--db", postgres_url)
        deadline = time.monotonic() + 30
        while not rows(postgres_url, "SELECT 1 FROM agent_starts WHERE agent = 'first'"):
            assert time.monotonic() < deadline and running.poll() is None
            time.sleep(0.05)
        # The run's connection is cut while its first call is in flight.
        cut = rows(
            postgres_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'agentops' AND pid <> pg_backend_pid()",
        )
        assert cut and all(r[0] for r in cut)
        out, err = running.communicate(timeout=60)
        message = err.decode()
        assert running.returncode == 2 and PASSWORD not in message + out.decode()
        assert message.startswith("error: run stopped: ") and "postgresql://agentops@" in message
        # As on a SQLite file that fails: the run stops, at most the next agent's call begun.
        called = [agent_of(r.body) for r in slow.requests]
        assert called in (["first"], ["first", "second"]), message
        listed = json_out("list-workflow-runs", "--db", postgres_url)
        assert [r["status"] for r in listed] == ["interrupted"]  # its process is gone

        resumed = json_out("resume", str(listed[0]["id"]), "--db", postgres_url)
        assert resumed["status"] == "succeeded"
        assert json_out("show-workflow-run", str(resumed["workflow_run_id"]), "--db", postgres_url)
