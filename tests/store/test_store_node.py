"""The Ray node of each agent run in the history (migration 12, ``runs.node``): written from
``AgentResult.node`` by the recorder (NULL for a run in the driver's process, a reused one and a
fan-out agent's own row), read back on every record, and shown by show-workflow-run (text and
--json), show-run and the web view's agent page, on both stores; a file from before migration
12 keeps its rows. The node ids here are made up; tests/cluster records real ones."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.runtime.events import AgentFinished, Event, RunStatus
from agentops.store import open_store
from agentops.store.migrations import MIGRATIONS
from agentops.store.stores import history_reader, open_database
from tests.support.store import (
    fan_out_events,
    fan_out_of,
    fan_out_workflow,
    instance_of,
    migrated_to,
    record_events,
    rows,
    succeeded,
)
from tests.support.web import fetch, ui_server

HEAD = "a" * 56  # Ray node ids are 28 bytes in hex
WORKER = "b" * 56
FLOW = fan_out_workflow()


def on(node: str | None, result: Any) -> Any:
    result.node = node
    return result


def record_spread_run(db: str) -> int:
    """planner on the head, writer's three items on worker, head, worker; triage in the
    driver's process (no node); plan_feature reused from an earlier run (its node not this
    run's)."""
    instances = [
        on(node, instance_of("writer", i, {"title": f"part {i}"}))
        for i, node in enumerate([WORKER, HEAD, WORKER])
    ]
    reused = on(HEAD, succeeded("plan_feature", "a plan"))
    reused.reused = True
    events: list[Event] = [
        AgentFinished(on(HEAD, succeeded("planner", "outline"))),
        *fan_out_events("writer", fan_out_of("writer", instances)),
        AgentFinished(succeeded("triage", '{"label": "feature"}')),
    ]
    with open_database(db) as store:
        return record_events(
            store, FLOW, events, RunStatus.SUCCEEDED, reused={"plan_feature": reused}
        )


def invoke(*args: str | Path | int) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_each_agent_runs_node_is_recorded_read_back_and_shown(db: str) -> None:
    run_id = record_spread_run(db)

    stored = {
        (row["agent"], row["item_index"]): row["node"]
        for row in rows(
            db, "SELECT agent, item_index, node FROM runs WHERE workflow_run_id = ?", run_id
        )
    }
    assert stored == {
        ("plan_feature", None): None,  # reused: it ran in an earlier run, not this one
        ("planner", None): HEAD,
        ("writer", 0): WORKER,
        ("writer", 1): HEAD,
        ("writer", 2): WORKER,
        ("writer", None): None,  # the fan-out agent made no call: its items have the nodes
        ("triage", None): None,  # in the driver's process
    }

    reader = history_reader(db)
    try:
        detail = reader.workflow_run(run_id)
        writer = next(a for a in detail.agents if a.agent == "writer")
        assert [i.node for i in writer.instances or []] == [WORKER, HEAD, WORKER]
        planner_id = next(a.id for a in detail.agents if a.agent == "planner")
        assert reader.agent_run(planner_id).node == HEAD
    finally:
        reader.close()

    shown = json.loads(invoke("show-workflow-run", run_id, "--json", "--db", db))
    by_name = {agent["name"]: agent for agent in shown["agents"]}
    assert by_name["planner"]["node"] == HEAD and by_name["triage"]["node"] is None
    assert [i["node"] for i in by_name["writer"]["instances"]] == [WORKER, HEAD, WORKER]

    text = invoke("show-workflow-run", run_id, "--db", db)
    assert text.count(f"ran on Ray node {WORKER}") == 2
    assert text.count(f"ran on Ray node {HEAD}") == 2  # planner and writer[1]
    assert f"ran on Ray node {HEAD}" in invoke("show-run", planner_id, "--db", db)
    assert json.loads(invoke("show-run", planner_id, "--json", "--db", db))["node"] == HEAD

    with ui_server(db) as url:
        status, _, page = fetch(f"{url}/runs/{run_id}/agents/writer%5B0%5D")
        assert status == 200 and f"<code data-ray-node>{WORKER}</code>" in page
        status, _, page = fetch(f"{url}/runs/{run_id}/agents/triage")
        assert status == 200 and "data-ray-node" not in page


def test_a_file_from_before_migration_12_gains_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """SQLite only: no PostgreSQL history predates migration 13, which came with PostgreSQL."""
    db = tmp_path / "agentops.db"
    migrated_to(db, 11)
    connection = sqlite3.connect(db)
    connection.execute(
        "INSERT INTO workflow_runs (workflow, status, definition, cost, started_at, finished_at) "
        "VALUES ('w', 'succeeded', 'name: w', 0.5, '2024-05-01T12:00:00.000000+00:00', "
        "'2024-05-01T12:00:10.000000+00:00')"
    )
    connection.execute(
        "INSERT INTO runs (workflow_run_id, workflow, agent, status, cost, output, finished_at) "
        "VALUES (1, 'w', 'a', 'succeeded', 0.5, 'done', '2024-05-01T12:00:05.000000+00:00')"
    )
    connection.commit()
    connection.close()

    with open_store(db):
        pass
    applied = [r["number"] for r in rows(db, "SELECT number FROM _migrations ORDER BY number")]
    assert 12 in applied and applied[-1] == MIGRATIONS[-1].number
    assert [tuple(r) for r in rows(db, "SELECT agent, output, node FROM runs")] == [
        ("a", "done", None)
    ]
    shown = json.loads(invoke("show-workflow-run", 1, "--json", "--db", db))
    assert [(a["name"], a["node"]) for a in shown["agents"]] == [("a", None)]
