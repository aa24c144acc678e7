"""The response cache from the command line, in real ``agentops`` processes against the test
server: ``--cache`` on run and batch, ``cache stats [--json]``, ``cache clear`` by workflow and
by age (on both stores), and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

from agentops.testing.server import OpenAITestServer
from tests.support.postgres import PASSWORD
from tests.support.reliability import run_agentops, write_workflow
from tests.support.store import execute

AGENTS = [{"name": "first"}, {"name": "second", "depends_on": "first"}]
PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}


def stats(db: str | Path) -> list[dict[str, object]]:
    done = run_agentops("cache", "stats", "--json", "--db", db)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def test_cache_on_the_command_line_stats_and_clear(
    server: OpenAITestServer, tmp_path: Path, db: str
) -> None:
    one = write_workflow(tmp_path / "one.yaml", server.base_url, AGENTS, name="one", prices=PRICES)
    two = write_workflow(
        tmp_path / "two.yaml", server.base_url, [{"name": "other"}], name="two", prices=PRICES
    )
    for path in (one, one, two):
        done = run_agentops("run", path, "--db", db, "--cache", "read_write")
        assert done.returncode == 0, done.stderr
    assert len(server.requests) == 3  # the second run of one was all hits

    found = {row["workflow"]: row for row in stats(db)}
    assert set(found) == {"one", "two"}
    assert found["one"]["entries"] == 2 and found["one"]["hits"] == 2
    assert found["two"]["entries"] == 1 and found["two"]["hits"] == 0
    assert isinstance(found["one"]["saved"], float) and found["one"]["saved"] > 0
    assert isinstance(found["one"]["size"], int) and found["one"]["size"] > 0
    table = run_agentops("cache", "stats", "--db", db)
    assert table.returncode == 0 and "one" in table.stdout and "saved" in table.stdout
    assert PASSWORD not in table.stdout + table.stderr

    shown = run_agentops("show-run", "3", "--db", db)
    assert "cached" in shown.stdout, shown.stdout

    cleared = run_agentops("cache", "clear", "--workflow", "one", "--db", db)
    assert cleared.returncode == 0 and "cleared 2 cached answers" in cleared.stdout
    assert PASSWORD not in cleared.stdout + cleared.stderr
    assert {row["workflow"]: row["entries"] for row in stats(db)} == {"one": 0, "two": 1}
    recent = run_agentops("cache", "clear", "--older-than", "30d", "--db", db)
    assert "cleared 0 cached answers" in recent.stdout
    execute(db, "UPDATE response_cache SET created_at = '2020-01-01T00:00:00.000000+00:00'")
    old = run_agentops("cache", "clear", "--older-than", "30d", "--db", db)
    assert "cleared 1 cached answer " in old.stdout
    # The recorded runs and their cached attempts are kept: the hits still count.
    assert {row["workflow"]: row["hits"] for row in stats(db)} == {"one": 2}


def test_bad_cache_input_is_one_line(server: OpenAITestServer, tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    bad_age = run_agentops("cache", "clear", "--older-than", "soon", "--db", db)
    assert bad_age.returncode == 2
    assert bad_age.stderr.strip().splitlines() == [
        "error: --older-than: 'soon' is not a duration: write a number and a unit: 30s, 15m, 12h, 7d or 2w"
    ]
    bad_mode = run_agentops("run", tmp_path / "x.yaml", "--cache", "always")
    assert bad_mode.returncode == 2 and "Traceback" not in bad_mode.stderr
    flow = write_workflow(
        tmp_path / "ttl.yaml", server.base_url, AGENTS, policies={"cache_ttl": "forever"}
    )
    bad_ttl = run_agentops("run", flow, "--db", db)
    assert bad_ttl.returncode == 2 and "Traceback" not in bad_ttl.stderr
    assert "ttl.yaml:" in bad_ttl.stderr and "cache_ttl" in bad_ttl.stderr
    assert "'forever' is not a duration" in bad_ttl.stderr


def test_batch_rows_share_the_cache(server: OpenAITestServer, tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": "echo", "task": "say {{ inputs.word }}"}],
        inputs={"word": "x"},
    )
    data = tmp_path / "rows.jsonl"
    data.write_text('{"word": "a"}\n{"word": "b"}\n{"word": "a"}\n', encoding="utf-8")
    first = run_agentops("batch", flow, "--data", data, "--db", db, "--cache", "read_write")
    assert first.returncode == 0, first.stderr
    # Rows a and a are the same request: at most one of them called (they may run at once).
    assert 2 <= len(server.requests) <= 3
    calls = len(server.requests)
    again = run_agentops("batch", flow, "--data", data, "--db", db, "--cache", "read")
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == calls


def test_run_replay_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        flow = write_workflow(tmp_path / "flow.yaml", server.base_url, AGENTS)
        recorded = run_agentops("run", flow, "--db", db)
        assert recorded.returncode == 0, recorded.stderr
        changed = write_workflow(
            tmp_path / "changed.yaml", server.base_url, [{**AGENTS[0], "max_tokens": 50}]
        )
    replayed = run_agentops("run", flow, "--db", db, "--replay", "1", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["cost"] == 0.0
    mismatch = run_agentops("run", changed, "--db", db, "--replay", "1")
    assert mismatch.returncode == 1
    assert "max_tokens 50 (recorded 1024)" in mismatch.stdout + mismatch.stderr
    unknown = run_agentops("run", flow, "--db", db, "--replay", "9")
    assert unknown.returncode == 2 and "no workflow run 9" in unknown.stderr
    assert "Traceback" not in unknown.stderr
