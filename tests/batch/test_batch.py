"""Batches end to end: real ``agentops batch`` processes over real HTTP to the test server,
the history read back with ``sqlite3``, results files read back as JSON."""

from __future__ import annotations

import csv
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentops.testing.server import Fault, OpenAITestServer
from tests.support.reliability import (
    agent_of,
    cli_env,
    json_of,
    rows,
    run_agentops,
    start_agentops,
    task_for,
    wait_until,
    write_workflow,
)

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}  # USD per million tokens


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.02) as running:
        yield running


def topic_flow(tmp_path: Path, server: OpenAITestServer, **policies: Any) -> Path:
    """Two agents per row; each row's topic opens its tasks, so requests trace back to rows."""
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
        inputs={"topic": None, "tone": "plain"},
        prices=PRICES,
        policies={"max_concurrency": 4, **policies},
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def topics(count: int) -> list[dict[str, Any]]:
    return [{"topic": f"t{n}", "unused": n} for n in range(1, count + 1)]


def topic_of(body: dict[str, Any]) -> str:
    content = str((body.get("messages") or [{}])[-1].get("content", ""))
    return content.split("[", 1)[1].split("]", 1)[0] if "[" in content else ""


def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_row_runs_once_and_the_results_come_out_in_input_order(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server)
    data = write_jsonl(tmp_path / "rows.jsonl", topics(30))
    db, out = tmp_path / "history.db", tmp_path / "results.jsonl"

    completed = run_agentops("batch", flow, "--data", data, "--out", out, "--db", db)

    assert completed.returncode == 0, completed.stderr
    assert (
        "batch 1 (reliability) succeeded" in completed.stdout
        and "30/30 rows ran" in completed.stdout
    )
    results = read_results(out)
    assert [r["row"] for r in results] == list(range(1, 31))
    for n, result in enumerate(results, 1):
        assert result["status"] == "succeeded" and result["error"] is None
        assert result["inputs"] == {
            "topic": f"t{n}",
            "tone": "plain",
        }  # extra columns ignored, defaults kept
        assert (
            set(result["outputs"]) == {"answer", "check"}
            and f"[t{n}]" in result["outputs"]["answer"]
        )
        assert result["cost"] > 0 and result["nodes"] == []  # no Ray node: run in this process
    called = sorted(topic_of(r.body) for r in server.requests)
    assert called == sorted([f"t{n}" for n in range(1, 31)] * 2)  # two agents per row, each once

    (batch,) = rows(db, "SELECT * FROM batches")
    assert (batch["status"], batch["row_count"], batch["rows_succeeded"]) == ("succeeded", 30, 30)
    linked = rows(
        db, "SELECT batch_id, batch_row, status, cost FROM workflow_runs ORDER BY batch_row"
    )
    assert [(r["batch_id"], r["batch_row"], r["status"]) for r in linked] == [
        (1, n, "succeeded") for n in range(1, 31)
    ]
    assert batch["cost"] == pytest.approx(sum(r["cost"] for r in linked))
    assert batch["cost"] == pytest.approx(sum(r["cost"] for r in results))

    listed = json_of(run_agentops("list-batches", "--json", "--db", db))
    assert [(b["id"], b["status"], b["rows_succeeded"]) for b in listed] == [(1, "succeeded", 30)]
    shown = json_of(run_agentops("show-batch", "1", "--json", "--db", db))
    assert shown["progress"] == {"succeeded": 30} and shown["rows_not_succeeded"] == []


def test_csv_rows_with_a_mapped_column_and_quoted_newlines(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server)
    data = tmp_path / "rows.csv"
    with data.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject", "note"])
        writer.writerow(["alpha", "one line"])
        writer.writerow(["beta", "two\nlines"])
        writer.writerow(["gamma", ""])
    out = tmp_path / "out.jsonl"

    completed = run_agentops(
        "batch",
        flow,
        "--data",
        data,
        "--map",
        "topic=subject",
        "--out",
        out,
        "--db",
        tmp_path / "h.db",
    )

    assert completed.returncode == 0, completed.stderr
    assert [r["inputs"]["topic"] for r in read_results(out)] == ["alpha", "beta", "gamma"]


@pytest.mark.parametrize(
    ("content", "where", "says"),
    [
        ('{"topic": "a"}\n{"topic": "b"}\n{"topic": \n', ":3:", "not valid JSON"),
        ('{"topic": "a"}\n["b"]\n', ":2:", "not an object"),
        ('{"topic": "a"}\n{"other": "b"}\n', ":2:", "--map topic=COLUMN"),
        (b'{"topic": "a"}\n{"topic": "caf\xe9"}\n', ":2:", "not UTF-8"),
        ("", "rows.jsonl:", "no rows"),
    ],
)
def test_a_bad_row_anywhere_stops_the_batch_before_any_call(
    tmp_path: Path, server: OpenAITestServer, content: str | bytes, where: str, says: str
) -> None:
    flow = topic_flow(tmp_path, server)
    data = tmp_path / "rows.jsonl"
    if isinstance(content, bytes):
        data.write_bytes(content)
    else:
        data.write_text(content, encoding="utf-8")
    db = tmp_path / "h.db"

    completed = run_agentops("batch", flow, "--data", data, "--db", db)

    assert completed.returncode == 2
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith("error: ") and where in line and says in line, line
    assert "Traceback" not in completed.stderr
    assert server.requests == []
    assert (
        not db.exists()
        or rows(db, "SELECT count(*) FROM sqlite_master WHERE name = 'batches'")[0][0] == 0
        or (rows(db, "SELECT count(*) FROM batches")[0][0] == 0)
    )


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--map", "topc=subject"], "did you mean 'topic'"),
        (["--map", "topic"], "--map expects INPUT=COLUMN"),
    ],
)
def test_bad_map_arguments_are_one_line_errors(
    tmp_path: Path, server: OpenAITestServer, arguments: list[str], says: str
) -> None:
    flow = topic_flow(tmp_path, server)
    data = write_jsonl(tmp_path / "rows.jsonl", topics(2))
    completed = run_agentops("batch", flow, "--data", data, *arguments, "--db", tmp_path / "h.db")
    assert (
        completed.returncode == 2
        and says in completed.stderr
        and "Traceback" not in completed.stderr
    )


def test_csv_with_more_fields_than_the_header_names_the_line(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server)
    data = tmp_path / "rows.csv"
    data.write_text("topic\nalpha\nbeta,extra\n", encoding="utf-8")
    completed = run_agentops("batch", flow, "--data", data, "--db", tmp_path / "h.db")
    assert (
        completed.returncode == 2
        and "rows.csv:3:" in completed.stderr
        and "header names 1" in completed.stderr
    )


def test_one_cap_for_the_whole_batch_never_overspent_and_rows_past_it_are_skipped(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server, max_tokens=64)
    data = write_jsonl(tmp_path / "rows.jsonl", topics(40))
    db, out = tmp_path / "h.db", tmp_path / "out.jsonl"
    cap = 0.0012  # a row's worst case is about $0.0006, what it really costs about $0.0001

    completed = run_agentops(
        "batch", flow, "--data", data, "--cost-cap", str(cap), "--out", out, "--db", db
    )

    assert completed.returncode == 1, completed.stderr
    results = read_results(out)
    statuses = [r["status"] for r in results]
    assert statuses.count("succeeded") >= 1 and statuses.count("skipped") >= 1
    assert (
        "skipped by the cost cap" in completed.stdout
        and "resume with: agentops resume-batch 1" in completed.stdout
    )
    spent = rows(db, "SELECT sum(cost) FROM workflow_runs WHERE batch_id = 1")[0][0]
    assert spent <= cap  # reserve before spend, across every row
    (batch,) = rows(
        db, "SELECT status, rows_succeeded, rows_skipped, rows_failed, cost_cap FROM batches"
    )
    assert batch["status"] == "failed" and batch["cost_cap"] == cap
    assert batch["rows_succeeded"] + batch["rows_skipped"] + batch["rows_failed"] == 40
    assert batch["rows_skipped"] == statuses.count("skipped")
    skipped_topics = {f"t{r['row']}" for r in results if r["status"] == "skipped"}
    assert not skipped_topics & {topic_of(r.body) for r in server.requests}  # never called


def test_a_429_with_retry_after_pauses_the_provider_for_every_row(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server, retries=2)
    data = write_jsonl(tmp_path / "rows.jsonl", topics(20))
    server.latency = 0.05
    server.inject(Fault(kind="status", status=429, retry_after=0.6), times=1)

    completed = run_agentops("batch", flow, "--data", data, "--db", tmp_path / "h.db", "--json")

    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["pauses"] == 1 and summary["paused_seconds"] == pytest.approx(0.6, abs=0.05)
    limited = next(r for r in server.requests if r.status == 429)
    assert limited.finished_at is not None
    started_during_pause = [
        r
        for r in server.requests
        if limited.finished_at + 0.05 < r.started_at < limited.finished_at + 0.5
    ]
    assert started_during_pause == []  # no row called the provider while it asked for a pause
    assert "rate limits: 1 pause(s)" in completed.stderr  # the summary goes to stderr with --json


def test_rows_overlap_with_no_barrier_under_one_concurrency_cap(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": "only", "task": task_for("only", "[{{ inputs.topic }}]")}],
        inputs={"topic": None},
        policies={"max_concurrency": 3},
    )
    server.latency = lambda body: 1.0 if topic_of(body) == "t1" else 0.05
    data = write_jsonl(tmp_path / "rows.jsonl", topics(12))

    completed = run_agentops("batch", flow, "--data", data, "--db", tmp_path / "h.db")

    assert completed.returncode == 0, completed.stderr
    spans = [(r.started_at, r.finished_at or r.started_at) for r in server.requests]
    most = max(sum(1 for s, f in spans if s <= moment < f) for moment, _ in spans)
    assert most == 3  # the batch's cap holds across rows, and fills it
    slow = next(r for r in server.requests if topic_of(r.body) == "t1")
    assert slow.finished_at is not None
    overtaking = [
        r for r in server.requests if topic_of(r.body) != "t1" and r.started_at < slow.finished_at
    ]
    assert len(overtaking) >= 5  # later rows ran while row 1 was still going: no barrier


def test_sigkill_then_resume_batch_reuses_finished_rows_and_completes_in_order(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server, max_concurrency=2)
    server.latency = 0.05
    data = write_jsonl(tmp_path / "rows.jsonl", topics(40))
    db, out = tmp_path / "h.db", tmp_path / "out.jsonl"

    batch = start_agentops("batch", flow, "--data", data, "--db", db, env=cli_env())
    try:

        def finished_rows() -> int:
            if not db.exists():
                return 0
            try:
                found = rows(db, "SELECT count(*) FROM workflow_runs WHERE status = 'succeeded'")
            except Exception:  # the schema is still being created
                return 0
            return int(found[0][0])

        wait_until(lambda: finished_rows() >= 8, timeout=60)
        batch.send_signal(signal.SIGKILL)
        batch.wait(10)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.wait()
    done_before = {
        f"t{r['batch_row']}"
        for r in rows(db, "SELECT batch_row FROM workflow_runs WHERE status = 'succeeded'")
    }
    assert 8 <= len(done_before) < 40
    calls_before = len(server.requests)
    listed = json_of(run_agentops("list-batches", "--json", "--db", db))
    assert listed[0]["status"] == "interrupted"  # its process is gone

    resumed = run_agentops("resume-batch", "1", "--out", out, "--db", db)

    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done_before)} done before" in resumed.stdout
    results = read_results(out)
    assert [r["row"] for r in results] == list(range(1, 41))
    assert all(r["status"] == "succeeded" for r in results)
    called_again = {topic_of(r.body) for r in server.requests[calls_before:]}
    assert not called_again & done_before  # finished rows were not called again
    (record,) = rows(db, "SELECT status, rows_succeeded FROM batches")
    assert (record["status"], record["rows_succeeded"]) == ("succeeded", 40)


def test_sigint_stops_the_batch_cleanly_and_says_how_to_resume(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server, max_concurrency=2)
    server.latency = 0.2
    data = write_jsonl(tmp_path / "rows.jsonl", topics(40))
    db = tmp_path / "h.db"

    batch = start_agentops("batch", flow, "--data", data, "--db", db, env=cli_env())
    wait_until(lambda: len(server.requests) >= 3, timeout=30)
    batch.send_signal(signal.SIGINT)
    stdout, stderr = batch.communicate(timeout=60)

    assert batch.returncode == 130, stderr
    text = stdout.decode()
    assert "interrupted" in text and "resume with: agentops resume-batch 1" in text
    assert "Traceback" not in stderr.decode()
    (record,) = rows(db, "SELECT status FROM batches")
    assert record["status"] == "interrupted"
    assert all(
        r["status"] in ("succeeded", "interrupted")
        for r in rows(db, "SELECT status FROM workflow_runs")
    )


def test_plan_prints_the_worst_case_of_the_whole_batch(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = topic_flow(tmp_path, server)
    data = write_jsonl(
        tmp_path / "rows.jsonl", [{"topic": "x"}, {"topic": "a much longer topic " * 20}]
    )
    single = json_of(run_agentops("plan", flow, "--input", "topic=x", "--json"))
    planned = json_of(run_agentops("plan", flow, "--data", data, "--cost-cap", "1", "--json"))
    batch = planned["batch"]
    assert batch["rows"] == 2 and batch["largest_row"] == 2
    assert batch["worst_case_total"] > 2 * single["worst_case_total"]  # the long row costs more
    assert batch["rows_within_cap"] == 2 and batch["cost_cap"] == 1
    assert server.requests == []


def test_the_python_api_runs_a_batch_on_the_fake_provider(tmp_path: Path) -> None:
    from agentops import FakeProvider
    from agentops.batch.runner import run_batch

    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: api_batch\ninputs: {topic: }\nagents:\n  - {name: a, model: gpt-4o-mini, task: 'about {{ inputs.topic }}'}\n"
    )
    data = write_jsonl(tmp_path / "rows.jsonl", topics(5))
    fake = FakeProvider(lambda request: "seen: " + request.messages[-1].content)
    out = tmp_path / "out.jsonl"

    summary = run_batch(flow, data=data, db=tmp_path / "h.db", provider=fake, out=out)

    assert summary.exit_code == 0 and summary.succeeded == 5
    assert [r["outputs"]["a"] for r in read_results(out)] == [
        f"seen: about t{n}" for n in range(1, 6)
    ]
    assert len(fake.requests) == 5
    assert time.time() >= summary.finished_at >= summary.started_at
    assert agent_of({"messages": [{"content": "agent a: x"}]}) == "a"  # the helper the suite shares


def test_batch_options_given_as_one_object_or_as_keywords_are_the_same_options(
    tmp_path: Path,
) -> None:
    from agentops import FakeProvider
    from agentops.batch import BatchOptions, resume_batch, run_batch

    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: api_batch\ninputs: {topic: }\nagents:\n  - {name: a, model: gpt-4o-mini, task: 'about {{ inputs.topic }}'}\n"
    )
    data = write_jsonl(tmp_path / "rows.jsonl", topics(2))
    fake = FakeProvider({"*": "ok"})
    options = BatchOptions(db=tmp_path / "h.db", provider=fake)

    first = run_batch(flow, data=data, options=options, out=tmp_path / "out.jsonl")
    again = resume_batch(first.batch_id, options=options)

    assert (first.exit_code, first.succeeded, first.out) == (0, 2, tmp_path / "out.jsonl")
    assert (again.batch_id, again.reused, again.out) == (first.batch_id, 2, None)
    assert len(fake.requests) == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'cost_capp'"):
        run_batch(flow, data=data, options=options, cost_capp=1.0)


def test_a_cap_with_a_model_of_no_known_price_is_refused_before_any_call(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [
            {
                "name": "only",
                "model": "no-such-priced-model",
                "task": task_for("only", "[{{ inputs.topic }}]"),
            }
        ],
        inputs={"topic": None},
    )
    data = write_jsonl(tmp_path / "rows.jsonl", topics(3))

    completed = run_agentops(
        "batch", flow, "--data", data, "--cost-cap", "1", "--db", tmp_path / "h.db"
    )

    assert completed.returncode == 2, completed.stdout
    (line,) = completed.stderr.strip().splitlines()
    assert "no known price" in line and "prices:" in line and "Traceback" not in completed.stderr
    assert server.requests == []
    db = tmp_path / "h.db"
    assert (
        not db.exists() or rows(db, "SELECT count(*) FROM batches")[0][0] == 0
    )  # nothing ran: nothing recorded


def test_rows_that_wait_for_approval_are_reported_and_resume_batch_continues_them(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    agents = [
        {"name": "answer", "task": task_for("answer", "[{{ inputs.topic }}] answer it.")},
        {
            "name": "send",
            "depends_on": "answer",
            "approval": "before",
            "task": task_for("send", "[{{ inputs.topic }}] send it."),
        },
    ]
    flow = write_workflow(
        tmp_path / "flow.yaml", server.base_url, agents, inputs={"topic": None}, prices=PRICES
    )
    data = write_jsonl(tmp_path / "rows.jsonl", topics(2))
    db = tmp_path / "history.db"

    first = run_agentops("batch", flow, "--data", data, "--db", db)
    assert first.returncode == 3, first.stderr
    assert "2 waiting for approval" in first.stdout and "agentops approvals" in first.stdout
    waiting = json_of(run_agentops("approvals", "--json", "--db", db))
    assert sorted((a["workflow_run_id"], a["agent"]) for a in waiting) == [(1, "send"), (2, "send")]
    for approval in waiting:
        decided = run_agentops(
            "approve", str(approval["workflow_run_id"]), "send", "--by", "ops", "--db", db
        )
        assert decided.returncode == 0, decided.stderr
    resumed = run_agentops("resume-batch", "1", "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    sent = sorted(topic_of(r.body) for r in server.requests if "send it" in json.dumps(r.body))
    assert sent == ["t1", "t2"]
    answered = [r for r in server.requests if "send it" not in json.dumps(r.body)]
    assert len(answered) == 2  # the answers were reused, not asked again
