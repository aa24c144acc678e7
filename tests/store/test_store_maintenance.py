"""``agentops db migrate --to postgresql://…`` (a SQLite history copied whole, ids and links
kept) and ``agentops db prune`` (old runs deleted in batches, their spend kept in ``costs``)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from agentops.cli.app import app
from agentops.runtime.events import RunStatus, ToolCallFinished, ToolCallRecord
from agentops.store import RunRecorder, SqliteHistoryWriter
from agentops.store.location import locate
from agentops.store.maintenance import TABLES
from agentops.store.stores import history_reader, open_database
from tests.support.postgres import PASSWORD
from tests.support.store import (
    T0,
    failed,
    finished,
    record,
    rows,
    started,
    succeeded,
    workflow_of,
)

DAY = 86_400.0


def invoke(*args: str | Path) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert PASSWORD not in result.output
    return result


def json_of(*args: str | Path) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fill(db: str, *, at: float) -> dict[str, int]:
    """A failed run resumed to success (a reused agent), a run with a tool call, and a batch."""
    flow = workflow_of("research", ["gather", "write"], cost_cap=1.0)
    with open_database(db) as store:
        first = record(
            store,
            flow,
            [succeeded("gather", "sources", at=at, failures=1), failed("write", "400", at=at)],
            RunStatus.FAILED,
            at=at,
        )
        state = history_reader(db).resume_state(first)
        second = record(
            store,
            flow,
            [succeeded("write", "draft", at=at + 60)],
            RunStatus.SUCCEEDED,
            resumed_from=first,
            reused=state.succeeded,
            at=at + 60,
        )
        tools = workflow_of("tools", ["a"])
        recorder = RunRecorder(store)
        recorder(started(tools, at=at + 120))
        recorder(
            ToolCallFinished(
                "a",
                ToolCallRecord(
                    1,
                    "c1",
                    "kb.search",
                    "{}",
                    "succeeded",
                    result="hit",
                    started_at=at + 120,
                    duration=0.1,
                ),
            )
        )
        a = succeeded("a", "found", at=at + 120)
        recorder(finished(tools, {"a": a}, RunStatus.SUCCEEDED, started_at=at + 120))
        writer = SqliteHistoryWriter(store)
        batch = writer.create_batch(
            workflow="research",
            definition="name: research",
            source_path="research.yaml",
            data_path="rows.jsonl",
            data_sha256="0" * 64,
            row_count=1,
            input_map={},
            cost_cap=None,
            started_at=at + 200,
        )
        rows_run = RunRecorder(store)
        rows_run(replace(started(flow, at=at + 200), batch_id=batch, batch_row=1))
        gather, write = succeeded("gather", "s", at=at + 200), succeeded("write", "w", at=at + 200)
        rows_run(
            finished(
                flow, {"gather": gather, "write": write}, RunStatus.SUCCEEDED, started_at=at + 200
            )
        )
        row = rows_run.workflow_run_id or 0
        writer.finish_batch(batch, status="succeeded", finished_at=at + 300, pauses=0, paused=0.0)
    return {"first": first, "second": second, "tools": recorder.workflow_run_id or 0, "row": row}


def rounded(value: Any) -> Any:
    """Costs summed in another order differ in the last bits: compared to 1e-9 USD."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def table_rows(db: str, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rows(db, f"SELECT * FROM {table} ORDER BY id")]


def test_a_sqlite_history_moves_into_postgresql_whole(tmp_path: Path, postgres_url: str) -> None:
    source = str(tmp_path / "agentops.db")
    ids = fill(source, at=T0)
    before = {
        "runs": json_of("list-workflow-runs", "--db", source),
        "detail": json_of("show-workflow-run", str(ids["second"]), "--db", source),
        "costs": json_of("costs", "--by", "model", "--db", source),
        "batch": json_of("show-batch", "1", "--db", source),
    }

    copied = json_of("db", "migrate", "--to", postgres_url, "--db", source)
    assert copied["to"] == str(locate(postgres_url)) and copied["rows"]["runs"] == 7

    for table in TABLES:  # every row, every id, every value
        assert table_rows(postgres_url, table) == table_rows(source, table), table
    after = {
        "runs": json_of("list-workflow-runs", "--db", postgres_url),
        "detail": json_of("show-workflow-run", str(ids["second"]), "--db", postgres_url),
        "costs": json_of("costs", "--by", "model", "--db", postgres_url),
        "batch": json_of("show-batch", "1", "--db", postgres_url),
    }
    assert after == before
    # New rows go on after the copied ids; the tool call is still linked to its agent run.
    with open_database(postgres_url) as store:
        new = record(store, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    assert new == max(ids.values()) + 1
    linked = rows(postgres_url, "SELECT r.agent FROM tool_calls t JOIN runs r ON r.id = t.run_id")
    assert [r[0] for r in linked] == ["a"]

    again = invoke("db", "migrate", "--to", postgres_url, "--db", source)
    assert (
        again.exit_code == 2
        and "already holds history (rows in batches, workflow_runs" in again.stderr
    )
    wrong = invoke("db", "migrate", "--to", str(tmp_path / "x.db"), "--db", source)
    assert wrong.exit_code == 2 and "into PostgreSQL (--to postgresql://" in wrong.stderr


def test_prune_deletes_old_runs_and_keeps_what_they_spent(db: str) -> None:
    now = time.time()
    old = fill(db, at=now - 200 * DAY)
    recent = fill(db, at=now - 2 * DAY)
    with open_database(db) as store:  # still running, from long ago: never pruned
        running = record(store, workflow_of("long", ["a"]), [], None, at=now - 300 * DAY)
    costs = {
        by: rounded(json_of("costs", "--by", by, "--db", db)) for by in ("workflow", "model", "day")
    }
    since = json_of(
        "costs", "--since", time.strftime("%Y-%m-%d", time.gmtime(now - 250 * DAY)), "--db", db
    )

    kept = json_of("db", "prune", "--older-than", "90d", "--keep-failed", "--db", db)
    assert (kept["workflow_runs"], kept["kept_failed"], kept["batches"]) == (3, 1, 1)
    left = {r["id"] for r in json_of("list-workflow-runs", "--limit", "100", "--db", db)}
    assert left == {old["first"], running, *recent.values()}

    pruned = json_of("db", "prune", "--older-than", "90d", "--db", db)
    assert pruned["workflow_runs"] == 1 and pruned["agent_runs"] == 2
    left = {r["id"] for r in json_of("list-workflow-runs", "--limit", "100", "--db", db)}
    assert left == {running, *recent.values()}
    assert (
        rows(db, "SELECT count(*) FROM attempts WHERE run_id NOT IN (SELECT id FROM runs)")[0][0]
        == 0
    )
    assert (
        rows(db, "SELECT count(*) FROM tool_calls WHERE workflow_run_id = ?", old["tools"])[0][0]
        == 0
    )
    # costs read as before, grouped every way and between dates
    assert {by: rounded(json_of("costs", "--by", by, "--db", db)) for by in costs} == costs
    assert rounded(json_of("costs", "--since", since["since"], "--db", db)) == rounded(since)
    # the recent history is whole: a resume chain and a batch
    assert json_of("show-batch", "2", "--db", db)["status"] == "succeeded"

    plain = invoke("db", "prune", "--older-than", "90d", "--db", db)
    assert plain.exit_code == 0 and plain.stdout.startswith("Pruned 0 workflow runs")
    bad = invoke("db", "prune", "--older-than", "ninety", "--db", db)
    assert bad.exit_code == 2 and "is not a duration: write a number and a unit" in bad.output
