"""A history database that cannot be used: read-only, with a corrupted page, written by a
newer agentops, or failing in the middle of a run. Real files, real ``agentops``
processes, the project's test server counting every model call.

What holds: a writing command (run, resume, batch, resume-batch) checks that it can
write the history before its first call, and refuses with exit 2 and one line naming
the file and the fix; a file from a newer agentops is refused by every command, naming
both migration numbers; a history that fails mid-run stops the run with one line, never
claims the run was recorded, and loses nothing already written; the web view answers a
damaged file with a 503 page, not a traceback.

Making a file read-only: ``chmod 0444`` stops an ordinary user, but root writes straight
through it, and these tests may run as root (CI does). As root the file is made immutable
with ``chattr +i`` (undone afterwards), which stops root as well; where chattr cannot do
that (no such tool, a file system without the flag), the tests that need it are skipped.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agentops.store.migrations import MIGRATIONS
from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    agent_of,
    agent_runs,
    integrity_check,
    rows,
    run_agentops,
    write_workflow,
)
from tests.support.web import fetch, ui_server

NEWEST = MIGRATIONS[-1].number
FUTURE = NEWEST + 5  # a migration number this agentops does not know


# --- making files read-only, damaged, or newer ---------------------------------------------


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _chattr(flag: str, *paths: Path) -> None:
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip(
            "running as root without chattr: nothing here can make a file read-only for root"
        )
    done = subprocess.run(
        [chattr, flag, *map(str, paths)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"chattr {flag} does not work here: {done.stderr.strip()}")


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """``paths`` cannot be written by anyone, this process's user included, until the block ends."""
    if not _is_root():
        for path in paths:
            path.chmod(0o444)
        try:
            yield
        finally:
            for path in paths:
                path.chmod(0o644)
        return
    _chattr("+i", *paths)
    try:
        yield
    finally:
        _chattr("-i", *paths)


def corrupt_table(db: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage, as a failing disk or a stray write would."""
    root = rows(db, "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", table)[
        0
    ][0]
    page_size = rows(db, "PRAGMA page_size")[0][0]
    with db.open("r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)


def from_a_newer_agentops(db: Path) -> None:
    """Record a migration this agentops does not know, as a newer version would have."""
    connection = sqlite3.connect(db)
    try:
        connection.execute(
            "INSERT INTO _migrations (number, name, applied_at) VALUES (?, 'from_the_future', '2031-01-01')",
            (FUTURE,),
        )
        connection.commit()
    finally:
        connection.close()


# --- a history with a failed run and a failed batch, both resumable ------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture(scope="module")
def seeded(server: OpenAITestServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run 1 (b answers 400, so it failed) and batch 1 over one row (its run 2 failed the same way)."""
    directory = tmp_path_factory.mktemp("seed")
    db = directory / "history.db"
    flow = write_workflow(
        directory / "flow.yaml", server.base_url, [{"name": "a"}, {"name": "b", "depends_on": "a"}]
    )
    data = directory / "rows.jsonl"
    data.write_text('{"row": 1}\n', encoding="utf-8")
    server.inject_for(
        lambda body: agent_of(body) == "b", kind="status", status=400, message="b refused"
    )
    try:
        assert run_agentops("run", flow, "--db", db).returncode == 1
        assert run_agentops("batch", flow, "--data", data, "--db", db).returncode == 1
    finally:
        server.clear_faults()
    assert [
        (r["id"], r["status"], r["batch_id"]) for r in rows(db, "SELECT * FROM workflow_runs")
    ] == [
        (1, "failed", None),
        (2, "failed", 1),
    ]
    return {"db": db, "flow": flow, "data": data}


@pytest.fixture
def history(seeded: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A copy of the seeded history for one test to damage; the workflow and data files stay shared."""
    db = tmp_path / "history.db"
    shutil.copy(seeded["db"], db)
    return {**seeded, "db": db}


def writing_command(name: str, files: dict[str, Path]) -> list[str | Path]:
    return {
        "run": ["run", files["flow"]],
        "resume": ["resume", "1"],
        "batch": ["batch", files["flow"], "--data", files["data"]],
        "resume-batch": ["resume-batch", "1"],
    }[name] + ["--db", files["db"]]


WRITERS = ["run", "resume", "batch", "resume-batch"]


def recorded(db: Path) -> list[tuple[Any, ...]]:
    """The workflow runs and batches as stored (neither table is damaged by these tests)."""
    return [tuple(r) for r in rows(db, "SELECT * FROM workflow_runs ORDER BY id")] + [
        tuple(r) for r in rows(db, "SELECT * FROM batches ORDER BY id")
    ]


def assert_refused(
    completed: subprocess.CompletedProcess[str],
    line: str,
    server: OpenAITestServer,
    calls_before: int,
) -> None:
    assert (completed.returncode, completed.stderr.splitlines()) == (2, [line]), (
        completed.stdout + completed.stderr
    )
    assert "Recorded as" not in completed.stdout
    assert len(server.requests) == calls_before  # not one model call


# --- refused before the first call ---------------------------------------------------------


@pytest.mark.parametrize("command", WRITERS)
def test_a_writing_command_on_a_read_only_history_stops_before_its_first_call(
    command: str, history: dict[str, Path], server: OpenAITestServer
) -> None:
    db = history["db"]
    before, content = recorded(db), db.read_bytes()
    calls = len(server.requests)
    with read_only(db):
        completed = run_agentops(*writing_command(command, history))
    assert_refused(
        completed,
        f"error: history database {db} is read-only (attempt to write a readonly database); "
        "make it writable or choose another --db",
        server,
        calls,
    )
    assert db.read_bytes() == content and recorded(db) == before


@pytest.mark.parametrize("command", WRITERS)
def test_a_writing_command_on_a_history_with_a_corrupted_page_stops_before_its_first_call(
    command: str, history: dict[str, Path], server: OpenAITestServer
) -> None:
    db = history["db"]
    corrupt_table(db, "runs")  # what every run writes (and a resume reads)
    before, content = recorded(db), db.read_bytes()
    calls = len(server.requests)
    completed = run_agentops(*writing_command(command, history))
    assert_refused(
        completed,
        f"error: history database {db} is damaged (database disk image is malformed); save what it holds with "
        f"sqlite3 {db} .recover | sqlite3 recovered.db, and point --db (or AGENTOPS_DB) at that file or a new one",
        server,
        calls,
    )
    assert db.read_bytes() == content and recorded(db) == before


@pytest.mark.parametrize(
    "command", [["list-batches"], ["show-batch", "1"], ["resume-batch", "1"]], ids=lambda c: c[0]
)
def test_the_batch_commands_answer_a_damaged_batches_table_in_one_line(
    command: list[str], history: dict[str, Path], server: OpenAITestServer
) -> None:
    db = history["db"]
    corrupt_table(db, "batches")
    content = db.read_bytes()
    calls = len(server.requests)
    completed = run_agentops(*command, "--db", db)
    assert_refused(
        completed,
        f"error: history database {db} is damaged (database disk image is malformed); save what it holds with "
        f"sqlite3 {db} .recover | sqlite3 recovered.db, and point --db (or AGENTOPS_DB) at that file or a new one",
        server,
        calls,
    )
    assert db.read_bytes() == content


EVERY_COMMAND = [
    *([name] for name in WRITERS),
    ["list-runs"],
    ["show-runs", "--workflow", "reliability"],
    ["list-workflow-runs"],
    ["show-workflow-run", "1"],
    ["show-run", "1"],
    ["costs"],
    ["list-batches"],
    ["show-batch", "1"],
    ["ui", "--port", "0"],
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: c[0])
def test_every_command_refuses_a_history_from_a_newer_agentops_naming_both_migrations(
    command: list[str], history: dict[str, Path], server: OpenAITestServer
) -> None:
    db = history["db"]
    from_a_newer_agentops(db)
    before, content = recorded(db), db.read_bytes()
    calls = len(server.requests)
    args = writing_command(command[0], history) if command[0] in WRITERS else [*command, "--db", db]
    completed = run_agentops(*args, timeout=60)
    assert_refused(
        completed,
        f"error: history database {db} was written by a newer agentops (its schema is at migration {FUTURE}; "
        f"this agentops knows migrations up to {NEWEST}); upgrade agentops, or point --db (or AGENTOPS_DB) "
        "at another file",
        server,
        calls,
    )
    assert db.read_bytes() == content and recorded(db) == before


# --- failing in the middle of a run ---------------------------------------------------------


def frozen_history(db: Path) -> list[Path]:
    """The database and its write-ahead log: what a run writes to."""
    return [db, db.with_name(db.name + "-wal")]


@pytest.mark.skipif(
    not _is_root(), reason="needs root: chattr +i on files a running process holds open"
)
def test_a_history_failing_mid_run_stops_the_run_with_one_line_and_keeps_what_was_written(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    frozen: list[Path] = []
    c_hangs = [True]

    def reply(body: dict[str, Any]) -> str:
        agent = agent_of(body)
        if agent == "b" and not frozen:  # a's result and b's start are on disk by now
            frozen.extend(frozen_history(db))
            _chattr("+i", *frozen)
        return f"output of {agent}"

    def latency(body: dict[str, Any]) -> float:
        return 60.0 if agent_of(body) == "c" and c_hangs[0] else 0.0

    with OpenAITestServer(reply=reply, latency=latency) as server:
        flow = write_workflow(
            tmp_path / "flow.yaml",
            server.base_url,
            [
                {"name": "a"},
                {"name": "b", "depends_on": "a"},
                {"name": "c", "depends_on": "b"},
            ],
        )
        started = time.monotonic()
        try:
            completed = run_agentops("run", flow, "--db", db)
        finally:
            if frozen:
                _chattr("-i", *frozen)
        took, c_hangs[0] = time.monotonic() - started, False
        assert frozen, completed.stderr
        assert (completed.returncode, completed.stderr.splitlines()) == (
            2,
            [
                f"error: run stopped: history database {db} failed with a disk error (disk I/O error); check the "
                "disk it is on (free space, permissions, a read-only or failing device), or choose another --db",
            ],
        ), completed.stdout + completed.stderr
        assert "Recorded as" not in completed.stdout
        # The run stopped when b could not be recorded: c, started in the same loop turn, was
        # cancelled in flight rather than waited for (its answer would take a minute).
        assert took < 30, took
        called = [agent_of(r.body) for r in server.requests]
        assert called[:2] == ["a", "b"] and called[2:] in ([], ["c"]), called

        assert integrity_check(db) == "ok"
        assert [(r["id"], r["status"]) for r in rows(db, "SELECT * FROM workflow_runs")] == [
            (1, "running")
        ]
        assert {name: (r["status"], r["output"]) for name, r in agent_runs(db, 1).items()} == {
            "a": ("succeeded", "output of a"),
        }
        # Nothing written was lost: the run reads as interrupted and resumes from a.
        resumed = run_agentops("resume", "1", "--db", db)
        assert resumed.returncode == 0, resumed.stderr
        assert [agent_of(r.body) for r in server.requests[len(called) :]] == ["b", "c"]
        assert {name: (r["status"], r["reused"]) for name, r in agent_runs(db, 2).items()} == {
            "a": ("succeeded", 1),
            "b": ("succeeded", 0),
            "c": ("succeeded", 0),
        }


@pytest.mark.skipif(
    not _is_root(), reason="needs root: chattr +i on files a running process holds open"
)
def test_a_history_failing_mid_batch_stops_the_batch_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    frozen: list[Path] = []

    def reply(body: dict[str, Any]) -> str:
        task = str(body["messages"][-1]["content"])
        if "row 2" in task and not frozen:
            frozen.extend(frozen_history(db))
            _chattr("+i", *frozen)
        return f"answer to {task}"

    with OpenAITestServer(reply=reply) as server:
        flow = write_workflow(
            tmp_path / "flow.yaml",
            server.base_url,
            [{"name": "a", "task": "agent a: row {{ inputs.row }}"}],
            inputs={"row": None},
            policies={"max_concurrency": 1},
        )
        data = tmp_path / "rows.jsonl"
        data.write_text("".join(f'{{"row": {n}}}\n' for n in (1, 2, 3)), encoding="utf-8")
        try:
            completed = run_agentops("batch", flow, "--data", data, "--db", db)
        finally:
            if frozen:
                _chattr("-i", *frozen)
        assert frozen, completed.stderr
        assert (completed.returncode, completed.stderr.splitlines()) == (
            2,
            [
                f"error: batch stopped: history database {db} failed with a disk error (disk I/O error); check the "
                "disk it is on (free space, permissions, a read-only or failing device), or choose another --db",
            ],
        ), completed.stdout + completed.stderr
        assert "Traceback" not in completed.stdout
        assert len(server.requests) == 2  # row 3 never ran
        assert integrity_check(db) == "ok"
        assert [
            (r["batch_row"], r["status"])
            for r in rows(db, "SELECT * FROM workflow_runs ORDER BY id")
        ] == [
            (1, "succeeded"),
            (2, "running"),
        ]


# --- the web view ---------------------------------------------------------------------------


def test_the_web_view_answers_a_damaged_history_with_a_503_page_and_one_log_line(
    history: dict[str, Path],
) -> None:
    db = history["db"]
    corrupt_table(db, "runs")
    logs: list[str] = []
    with ui_server(db, logs=logs) as url:
        status, _, page = fetch(f"{url}/runs/1")
        again, _, _ = fetch(f"{url}/runs/1/agents/a")
    assert (status, again) == (503, 503)
    assert f"history database {db} is damaged (database disk image is malformed)" in page
    assert "point --db (or AGENTOPS_DB) at that file or a new one" in page
    assert "Traceback" not in logs[0]
    assert (
        logs[0].splitlines()
        == [
            f"error: history database {db} is damaged (database disk image is malformed); save what it holds with "
            f"sqlite3 {db} .recover | sqlite3 recovered.db, and point --db (or AGENTOPS_DB) at that file or a new one",
        ]
        * 2
    )
