"""Structured outputs end to end: real ``agentops`` processes against the shipped test server
(in this process), with the rows they leave in the history checked.

A re-ask that succeeds, re-asks that run out, a cap that stops the re-asks, downstream
fields reaching the prompt, the load-time reference errors; ``show-run`` and batches.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import yaml

from agentops.testing.server import Fault, OpenAITestServer
from tests.support.reliability import KEY_ENV, cli_env, run_agentops

PLAN = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "steps": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "steps"],
    "additionalProperties": False,
}


def write_flow(folder: Path, server: OpenAITestServer, *, retries: int = 2, **extra: Any) -> Path:
    """The issue's planner → writer, with the schema in a file next to the workflow."""
    (folder / "schemas").mkdir(exist_ok=True)
    (folder / "schemas" / "plan.json").write_text(json.dumps(PLAN, indent=2), encoding="utf-8")
    document = {
        "name": "trip",
        "inputs": {"city": "Paris"},
        "policies": {"backoff": {"base": 0.01, "max": 0.02}},
        "providers": {"test": {"base_url": server.base_url, "api_key_env": KEY_ENV}},
        "agents": [
            {
                "name": "planner",
                "model": "gpt-4o-mini",
                "provider": "test",
                "output": {"schema": "schemas/plan.json", "retries": retries},
                "task": "Plan a trip to {{ inputs.city }}.",
            },
            {
                "name": "writer",
                "model": "gpt-4o-mini",
                "provider": "test",
                "depends_on": "planner",
                "task": "Write about {{ planner.output.title }}; start with {{ planner.output.steps[0] }}.",
            },
        ],
        **extra,
    }
    path = folder / "flow.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def planner_reply(body: dict[str, Any]) -> str:
    """The planner answers a real plan; the writer echoes its prompt, so the test can read it."""
    if body.get("response_format"):
        return json.dumps({"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]})
    return "WROTE: " + str(body["messages"][-1]["content"])


def rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_a_reask_that_succeeds_and_fields_that_reach_the_next_prompt(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.reply = planner_reply
    server.inject(Fault(kind="wrong_shape"))
    flow, db = write_flow(tmp_path, server), tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db, "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["status"] == "succeeded"
    writer_prompt = server.requests[-1].body["messages"][-1]["content"]
    assert writer_prompt == "Write about Paris in a day; start with the Louvre."
    assert len(server.requests) == 3  # planner, its re-ask, writer
    reask = server.requests[1].body["messages"]
    assert [m["role"] for m in reask] == ["user", "assistant", "user"]
    assert reask[1]["content"] == '["not", "the", "schema"]'
    assert "at $: ['not', 'the', 'schema'] is not of type 'object'" in reask[2]["content"]
    # History: the JSON text in output, the parsed value, each attempt's validation error.
    [(run_id, output, value)] = rows(
        db, "SELECT id, output, value FROM runs WHERE agent = 'planner'"
    )
    assert (
        json.loads(output)
        == json.loads(value)
        == {"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]}
    )
    assert rows(
        db,
        f"SELECT number, turn, status, validation_error FROM attempts WHERE run_id = {run_id} ORDER BY number",
    ) == [
        (1, 1, "succeeded", "at $: ['not', 'the', 'schema'] is not of type 'object'"),
        (2, 2, "succeeded", None),
    ]
    assert rows(db, "SELECT value FROM runs WHERE agent = 'writer'") == [(None,)]
    shown = run_agentops("show-run", str(run_id), "--db", db, env=cli_env(COLUMNS="200"))
    assert shown.returncode == 0, shown.stderr
    assert '{\n  "title": "Paris in a day",\n  "steps": [\n    "the Louvre",' in shown.stdout
    assert "1      1   invalid" in shown.stdout
    assert "invalid answer: at $: ['not', 'the', 'schema'] is not of type 'object'" in shown.stdout
    as_json = json.loads(run_agentops("show-run", str(run_id), "--db", db, "--json").stdout)
    assert as_json["value"] == {"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]}
    assert [a["validation_error"] for a in as_json["attempts"]][1] is None


def test_reasks_that_run_out_fail_the_agent_and_skip_its_dependents(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.inject(Fault(kind="invalid_json"), times=3)
    flow, db = write_flow(tmp_path, server, retries=2), tmp_path / "history.db"
    completed = run_agentops("run", flow, "--db", db)
    assert completed.returncode == 1
    assert len(server.requests) == 3  # the first answer and two re-asks; the writer never runs
    statuses = dict(rows(db, "SELECT agent, status FROM runs"))
    assert statuses == {"planner": "failed", "writer": "skipped"}
    [(error,)] = rows(db, "SELECT error FROM runs WHERE agent = 'planner'")
    assert error == (
        "the answer does not follow the output schema after 2 re-asks: the answer is not JSON "
        "(Expecting value: line 1 column 1 (char 0)): 'Sure! Here is the plan: {title: Paris'"
    )
    shown = completed.stdout + completed.stderr
    assert "the answer does not follow the output schema after 2 re-asks" in shown
    assert shown.count("the answer does not follow the output schema: the answer is not JSON") == 3
    assert shown.count("; re-asking") == 2  # plain lines: the last rejection has nothing left
    assert len(rows(db, "SELECT id FROM attempts WHERE validation_error IS NOT NULL")) == 3


def test_a_cost_cap_stops_the_reasks(tmp_path: Path, server: OpenAITestServer) -> None:
    server.inject(Fault(kind="length"), times=20)  # every answer cut off at max_tokens
    flow = write_flow(
        tmp_path, server, retries=10, prices={"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}}
    )
    document = yaml.safe_load(flow.read_text(encoding="utf-8"))
    document["agents"][0]["max_tokens"] = 50
    flow.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    db = tmp_path / "history.db"
    # Each re-ask's prompt holds the earlier answers, errors and the schema, so what it
    # spends and what it reserves (its prompt bound + 50 tokens out, at $1,000 per M) grow
    # with every re-ask: under $2 the fourth re-ask no longer fits, long before the ten allowed.
    completed = run_agentops("run", flow, "--db", db, "--cost-cap", "2", "--json")
    assert completed.returncode == 1, completed.stderr
    result = json.loads(completed.stdout)
    planner = result["agents"]["planner"]
    assert planner["status"] == "skipped"
    assert (
        planner["error"]
        == "cost cap (before re-ask 4: the last answer did not follow the output schema)"
    )
    assert len(server.requests) == 4
    assert result["agents"]["writer"]["status"] == "skipped"
    assert result["cost"] <= 2.0
    costs = [cost for (cost,) in rows(db, "SELECT cost FROM attempts ORDER BY number")]
    assert len(costs) == 4 and costs == sorted(costs) and abs(sum(costs) - result["cost"]) < 1e-9
    assert rows(
        db,
        "SELECT count(*) FROM attempts WHERE validation_error LIKE 'the answer was cut off at max_tokens (50)%'",
    ) == [(4,)]


def test_load_time_reference_errors_through_validate_and_run(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_flow(tmp_path, server)
    text = flow.read_text(encoding="utf-8").replace("planner.output.title", "planner.output.titel")
    text = text.replace(
        "Plan a trip to {{ inputs.city }}.",
        "Plan a trip to {{ inputs.city }}. {{ writer.output.x }}",
    )
    flow.write_text(text, encoding="utf-8")
    checked = run_agentops("validate", flow)
    assert checked.returncode == 2
    lines = checked.stdout.splitlines()
    assert any(
        line.startswith(f"{flow}:")
        and line.endswith(
            "agent 'writer': task uses {{ planner.output.titel }}, but the output schema of 'planner' has no "
            "field 'titel'; did you mean 'title'?"
        )
        for line in lines
    ), lines
    assert any(
        "but 'writer' has no output schema, so its answer has no fields; add output: {schema: ...} to 'writer'"
        in line
        for line in lines
    )
    assert "Traceback" not in checked.stdout + checked.stderr
    ran = run_agentops("run", flow, "--db", tmp_path / "history.db")
    assert ran.returncode == 2 and "did you mean 'title'?" in ran.stderr
    assert not server.requests  # nothing was called


def test_validate_checks_the_schema_file_and_warns_about_strict_mode(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    flow = write_flow(tmp_path, server)
    schema = tmp_path / "schemas" / "plan.json"
    schema.write_text(
        json.dumps({**PLAN, "properties": {"title": {"type": "text"}}}), encoding="utf-8"
    )
    checked = run_agentops("validate", flow)
    assert checked.returncode == 2
    assert checked.stdout.startswith(
        f"{schema}:1:1: output schema of agent 'planner' is not a valid JSON Schema: at properties.title.type:"
    )
    schema.write_text(json.dumps({**PLAN, "additionalProperties": True}), encoding="utf-8")
    checked = run_agentops("validate", flow)
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.splitlines()[0] == f"OK {flow}"
    assert (
        "warning: agent 'planner': the output schema breaks a rule of OpenAI's strict mode ($ must set additionalProperties: false)"
        in checked.stdout
    )
    planned = run_agentops("plan", flow)
    assert planned.returncode == 0, planned.stderr
    assert (
        "warning: agent 'planner': the output schema breaks a rule of OpenAI's strict mode"
        in planned.stdout
    )
    assert "output schema with 2 re-asks; up to 3 turns (1 + output.retries)" in planned.stdout


def test_a_batch_gives_the_parsed_value_in_outputs(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.reply = planner_reply
    flow, db = write_flow(tmp_path, server), tmp_path / "history.db"
    data = tmp_path / "cities.jsonl"
    data.write_text('{"city": "Paris"}\n{"city": "Rome"}\n', encoding="utf-8")
    results = tmp_path / "results.jsonl"
    completed = run_agentops("batch", flow, "--data", data, "--db", db, "--out", results)
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert [line["outputs"]["planner"] for line in lines] == [
        {"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]}
    ] * 2
    assert (
        lines[0]["outputs"]["writer"] == "WROTE: Write about Paris in a day; start with the Louvre."
    )


def test_a_resume_feeds_the_reused_value_to_the_fields_downstream(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    server.reply = planner_reply
    server.inject_for(lambda body: "response_format" not in body, kind="status", status=400)
    flow, db = write_flow(tmp_path, server), tmp_path / "history.db"
    first = run_agentops("run", flow, "--db", db, "--json")
    assert first.returncode == 1, first.stderr
    run_id = json.loads(first.stdout)["workflow_run_id"]
    server.clear_faults()
    server.requests.clear()
    resumed = run_agentops("resume", str(run_id), "--db", db, "--json")
    assert resumed.returncode == 0, resumed.stderr
    [writer_call] = server.requests  # the planner is reused, not called again
    assert (
        writer_call.body["messages"][-1]["content"]
        == "Write about Paris in a day; start with the Louvre."
    )
    assert rows(db, "SELECT reused, value FROM runs WHERE agent = 'planner' ORDER BY id") == [
        (0, '{"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]}'),
        (1, '{"title": "Paris in a day", "steps": ["the Louvre", "the Seine"]}'),
    ]
