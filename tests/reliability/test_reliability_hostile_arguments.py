"""Hostile arguments through real ``agentops`` processes: a bad argument fails before
anything is spent. An ``--out`` the results could not be written to, a cost cap that is
not a finite number of USD, or a workflow or data path that is a FIFO or a device is one
line and exit 2, before the batch is recorded and before the test server sees a request.
Data files saved with a byte order mark read as written, and ``ui --allow-remote``
answers requests addressed to the machine itself while still refusing other names
(DNS rebinding). Every request here goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.errors import UsageError
from agentops.store import open_store
from agentops.testing.server import OpenAITestServer
from tests.support.reliability import cli_env, rows, run_agentops, task_for, write_workflow
from tests.support.web import fetch, ui_server

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}


def topic_flow(tmp_path: Path, server: OpenAITestServer) -> Path:
    agents = [{"name": "answer", "task": task_for("answer", "[{{ inputs.topic }}] answer it.")}]
    return write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        agents,
        inputs={"topic": None},
        prices=PRICES,
        policies={"retries": 0},
    )


def topic_rows(tmp_path: Path, *topics: str) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"topic": topic}) + "\n" for topic in topics), encoding="utf-8"
    )
    return path


def topic_of(body: dict[str, Any]) -> str:
    """The row's topic, which the task opens with in brackets."""
    content = str(body["messages"][-1]["content"])
    return content.split("[", 1)[1].split("]", 1)[0]


def one_line(text: str) -> list[str]:
    assert "Traceback" not in text, text
    return text.strip().splitlines()


def batches(db: Path) -> list[tuple[int, str]]:
    """(id, status) of every batch recorded; none when the database or its table does not exist."""
    if not db.exists() or not rows(db, "SELECT 1 FROM sqlite_master WHERE name = 'batches'"):
        return []
    return [
        (row["id"], row["status"]) for row in rows(db, "SELECT id, status FROM batches ORDER BY id")
    ]


# --- batch --out: checked before the batch is recorded or any row runs ----------------------------------


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe.jsonl")
    return tmp_path / "pipe.jsonl"


def _file_as_folder(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    return tmp_path / "notes.txt" / "results.jsonl"


def _null_device(tmp_path: Path) -> Path:
    # Through a symlink: without the check, writing the results replaces the link, not /dev/null.
    (tmp_path / "null.jsonl").symlink_to("/dev/null")
    return tmp_path / "null.jsonl"


# (how --out is made from tmp_path, the one line expected with {out} and {folder} filled in)
BAD_OUTS = {
    "a directory": (
        lambda tmp: tmp,
        "error: --out {out} is a directory; give the path of a file, such as {out}/results.jsonl",
    ),
    "a missing folder": (
        lambda tmp: tmp / "missing" / "results.jsonl",
        "error: --out {out}: {folder} is not an existing folder; create it or choose another path",
    ),
    "under a file": (
        _file_as_folder,
        "error: --out {out}: {folder} is not an existing folder; create it or choose another path",
    ),
    "a FIFO": (
        _fifo,
        "error: --out {out} is a FIFO (named pipe), not a regular file; give the path of a file",
    ),
    "a device": (
        _null_device,
        "error: --out {out} is a character device, not a regular file; give the path of a file",
    ),
    "an unwritable folder": (  # sysfs refuses new files even to root
        lambda tmp: Path("/sys/results.jsonl"),
        "error: --out {out}: cannot write in {folder} (Permission denied); choose a folder you can write to",
    ),
    "the data file": (
        lambda tmp: tmp / "rows.jsonl",
        "error: --out {out} is the data file, which the results would replace; choose another path",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_OUTS))
def test_batch_refuses_an_out_it_could_not_write_before_the_batch_is_recorded(
    tmp_path: Path, server: OpenAITestServer, kind: str
) -> None:
    flow, data, db = (
        topic_flow(tmp_path, server),
        topic_rows(tmp_path, "t1", "t2", "t3"),
        tmp_path / "h.db",
    )
    make, expected = BAD_OUTS[kind]
    out = make(tmp_path)

    completed = run_agentops("batch", flow, "--data", data, "--out", out, "--db", db)

    assert completed.returncode == 2, completed.stderr
    assert one_line(completed.stderr) == [expected.format(out=out, folder=out.resolve().parent)]
    assert server.requests == []
    assert batches(db) == []
    assert data.read_text(encoding="utf-8").count("topic") == 3  # the rows are untouched


def test_resume_batch_refuses_an_out_it_could_not_write_before_taking_the_batch_over(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow, data, db = (
        topic_flow(tmp_path, server),
        topic_rows(tmp_path, "t1", "t2"),
        tmp_path / "h.db",
    )
    server.inject_for(
        lambda body: "[t2]" in json.dumps(body), kind="status", status=400, message="not today"
    )
    first = run_agentops("batch", flow, "--data", data, "--db", db)
    assert first.returncode == 1, first.stderr
    assert batches(db) == [(1, "failed")] and len(server.requests) == 2
    server.clear_faults()

    completed = run_agentops("resume-batch", "1", "--out", tmp_path, "--db", db)

    assert completed.returncode == 2, completed.stderr
    assert one_line(completed.stderr) == [
        f"error: --out {tmp_path} is a directory; give the path of a file, such as {tmp_path}/results.jsonl"
    ]
    assert len(server.requests) == 2  # row 2 was not run again
    assert batches(db) == [(1, "failed")]  # not taken over: still resumable


# --- cost caps: finite and at least 0, on every command that takes one ---------------------------------

CAP_COMMANDS = {
    "run": lambda flow, data: ["run", flow],
    "resume": lambda flow, data: ["resume", "1"],
    "plan": lambda flow, data: ["plan", flow, "--data", data],
    "batch": lambda flow, data: ["batch", flow, "--data", data],
    "resume-batch": lambda flow, data: ["resume-batch", "1"],
}


@pytest.mark.parametrize("command", sorted(CAP_COMMANDS))
@pytest.mark.parametrize(
    ("given", "shown"),
    [("inf", "inf"), ("1e309", "inf"), ("nan", "nan"), ("-inf", "-inf"), ("-1", "-1")],
)
def test_a_cost_cap_that_is_not_a_finite_amount_is_refused_before_anything_runs(
    tmp_path: Path, server: OpenAITestServer, command: str, given: str, shown: str
) -> None:
    flow, data, db = topic_flow(tmp_path, server), topic_rows(tmp_path, "t1"), tmp_path / "h.db"

    completed = run_agentops(
        *CAP_COMMANDS[command](flow, data), "--cost-cap", given, env=cli_env(AGENTOPS_DB=str(db))
    )

    assert completed.returncode == 2, completed.stderr
    assert one_line(completed.stderr) == [
        f"error: --cost-cap must be a finite number of USD, 0 or more (got {shown})"
    ]
    assert completed.stdout == ""
    assert server.requests == []
    assert not db.exists()


def test_a_cost_cap_of_zero_is_still_a_cap(tmp_path: Path, server: OpenAITestServer) -> None:
    flow, data = topic_flow(tmp_path, server), topic_rows(tmp_path, "t1")
    planned = json.loads(
        run_agentops("plan", flow, "--data", data, "--cost-cap", "0", "--json").stdout
    )
    assert planned["batch"]["cost_cap"] == 0.0


def test_an_infinite_cap_or_price_in_the_workflow_file_is_reported_at_its_line(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: t\n"
        "policies:\n"
        "  cost_cap: .inf\n"
        "prices:\n"
        "  gpt-4o-mini: {input: .nan, output: 1.0e+309}\n"
        "agents:\n"
        "  - {name: a, model: gpt-4o-mini, task: hi}\n",
        encoding="utf-8",
    )
    completed = run_agentops("validate", flow)
    assert completed.returncode == 2
    assert one_line(completed.stdout) == [
        f"{flow}:3:13: policies.cost_cap must be a finite number (got inf)",
        f"{flow}:5:24: prices.gpt-4o-mini.input must be a finite number (got nan)",
        f"{flow}:5:38: prices.gpt-4o-mini.output must be a finite number (got inf)",
    ]


def test_the_python_api_refuses_an_infinite_cap_before_any_call(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow, data = topic_flow(tmp_path, server), topic_rows(tmp_path, "t1")
    env = cli_env()
    with pytest.raises(UsageError) as run_error:
        agentops.run(
            flow, inputs={"topic": "x"}, cost_cap=float("inf"), env=env, db=tmp_path / "h.db"
        )
    assert str(run_error.value) == "cost_cap must be a finite number of USD, 0 or more (got inf)"
    from agentops.batch.runner import run_batch

    with pytest.raises(UsageError) as batch_error:
        run_batch(flow, data=data, cost_cap=float("nan"), env=env, db=tmp_path / "h.db")
    assert str(batch_error.value) == "cost_cap must be a finite number of USD, 0 or more (got nan)"
    assert server.requests == []
    assert not (tmp_path / "h.db").exists()


# --- the kind of file behind a workflow or data path ------------------------------------------------------

KINDS = {"FIFO": "a FIFO (named pipe)", "device": "a character device"}


def special_file(tmp_path: Path, kind: str, name: str) -> Path:
    if kind == "device":
        return Path("/dev/zero")  # endless: read whole, it would fill the size limit first
    os.mkfifo(tmp_path / name)  # nobody ever writes to it: opening it for reading waits for ever
    return tmp_path / name


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", ["run", "validate", "plan", "graph", "batch"])
def test_a_workflow_path_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, server: OpenAITestServer, command: str, kind: str
) -> None:
    path = special_file(tmp_path, kind, "flow.yaml")
    data = topic_rows(tmp_path, "t1")
    extra = ["--data", str(data)] if command == "batch" else []

    completed = run_agentops(
        command, path, *extra, env=cli_env(AGENTOPS_DB=str(tmp_path / "h.db")), timeout=30
    )

    assert completed.returncode == 2, completed.stderr
    message = f"{path} is {KINDS[kind]}, not a regular file; give the path of a workflow .yaml file"
    expected = (
        message if command == "validate" else f"error: {message}"
    )  # validate reports on stdout
    assert one_line(completed.stdout + completed.stderr) == [expected]
    assert server.requests == []


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", ["plan", "batch"])
def test_a_data_path_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, server: OpenAITestServer, command: str, kind: str
) -> None:
    flow = topic_flow(tmp_path, server)
    data = special_file(tmp_path, kind, "rows.jsonl")
    if kind == "device":  # /dev/zero has no suffix: a symlink gives it one, as a user's might
        (tmp_path / "rows.jsonl").symlink_to(data)
        data = tmp_path / "rows.jsonl"

    completed = run_agentops(
        command, flow, "--data", data, env=cli_env(AGENTOPS_DB=str(tmp_path / "h.db")), timeout=30
    )

    assert completed.returncode == 2, completed.stderr
    assert one_line(completed.stderr) == [
        f"error: {data} is {KINDS[kind]}, not a regular file; give the path of a .jsonl or .csv file"
    ]
    assert server.requests == []
    assert batches(tmp_path / "h.db") == []


# --- data files with a byte order mark ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "rows.csv",
            "\ufefftopic,note\r\nalpha,first\r\nbeta,second\r\n",
        ),  # as Excel saves "CSV UTF-8"
        (
            "rows.jsonl",
            '\ufeff{"topic": "alpha"}\n{"topic": "beta"}\n',
        ),  # as Notepad saves "UTF-8 with BOM"
    ],
)
def test_a_data_file_saved_with_a_byte_order_mark_reads_its_first_column(
    tmp_path: Path, server: OpenAITestServer, name: str, content: str
) -> None:
    flow = topic_flow(tmp_path, server)
    data = tmp_path / name
    data.write_bytes(content.encode("utf-8"))
    out = tmp_path / "results.jsonl"

    completed = run_agentops("batch", flow, "--data", data, "--out", out, "--db", tmp_path / "h.db")

    assert completed.returncode == 0, completed.stderr
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["row"], r["inputs"], r["status"]) for r in results] == [
        (1, {"topic": "alpha"}, "succeeded"),
        (2, {"topic": "beta"}, "succeeded"),
    ]
    assert sorted(topic_of(r.body) for r in server.requests) == ["alpha", "beta"]


# --- ui --allow-remote: the machine's own addresses work, other names do not ----------------------------------


@pytest.fixture
def history(tmp_path: Path) -> Path:
    db = tmp_path / "agentops.db"
    with open_store(db):
        pass
    return db


def status_for(port: int, host: str) -> int:
    """GET / on 127.0.0.1:PORT with the Host header a browser that typed HOST would send."""
    return fetch(f"http://127.0.0.1:{port}/", headers={"Host": f"{host}:{port}"})[0]


def test_a_remote_view_answers_the_machines_own_addresses_and_refuses_other_names(
    history: Path,
) -> None:
    with ui_server(
        history, "--host", "0.0.0.0", "--allow-remote", "--allowed-host", "Viewer.Example"
    ) as url:
        port = int(url.rsplit(":", 1)[1])
        answers: dict[str, Any] = {
            host: status_for(port, host)
            for host in (
                "192.0.2.7",
                "[2001:db8::7]",
                "10.1.2.3",
                socket.gethostname(),
                "viewer.example",
                "127.0.0.1",
                "localhost",
                "attacker.example",
                "192.0.2.7.attacker.example",
                "0x7f.attacker.example",
            )
        }
    assert answers == {
        "192.0.2.7": 200,
        "[2001:db8::7]": 200,
        "10.1.2.3": 200,
        socket.gethostname(): 200,
        "viewer.example": 200,
        "127.0.0.1": 200,
        "localhost": 200,
        "attacker.example": 400,
        "192.0.2.7.attacker.example": 400,
        "0x7f.attacker.example": 400,
    }


def test_a_loopback_view_still_answers_only_loopback_names(history: Path) -> None:
    with ui_server(history) as url:
        port = int(url.rsplit(":", 1)[1])
        answers = {
            host: status_for(port, host)
            for host in ("127.0.0.1", "localhost", "192.0.2.7", socket.gethostname())
        }
    assert answers == {
        "127.0.0.1": 200,
        "localhost": 200,
        "192.0.2.7": 400,
        socket.gethostname(): 400,
    }


@pytest.mark.parametrize("name", ["*", "viewer.example:8765", "http://viewer.example", ""])
def test_an_allowed_host_that_is_not_a_plain_name_is_refused(history: Path, name: str) -> None:
    completed = run_agentops("ui", "--db", history, "--port", "0", "--allowed-host", name)
    assert completed.returncode == 2
    assert one_line(completed.stderr) == [
        f"error: --allowed-host expects a host name such as viewer.example (no port, scheme or wildcard), got {name!r}"
    ]
