"""Fan-out instances and routing decisions in the history: the rows a run's events make (an
instance a row of its agent with its item, the fan-out agent's row with its count and no
spend), every sum counting each dollar once, the records read back (instances under their
agent), resume state (succeeded instances, decisions) and a file from before migration 11."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from agentops.runtime.engine import Engine
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Decision,
    Event,
    FanOutStarted,
    RunStatus,
    SkipCause,
    ToolCallFinished,
    ToolCallRecord,
    split_instance_key,
)
from agentops.store import RunRecorder, SqliteHistoryWriter, Store
from agentops.store.migrations import MIGRATIONS
from agentops.store.records import CostGrouping
from agentops.store.resume import chain_spend, load_resume_state
from agentops.store.stores import history_reader, open_database
from tests.support.store import (
    LABEL,
    T0,
    failed,
    fan_out_events,
    fan_out_of,
    fan_out_workflow,
    finished,
    instance_of,
    migrated_to,
    not_run,
    record_events,
    routed_away,
    routed_to,
    rows,
    started,
    succeeded,
)

FLOW = fan_out_workflow()
SECTIONS = [{"title": "Intro"}, {"title": "Body", "words": 300}, {"title": "End"}]
BUG = f"{LABEL} == 'bug'"
FEATURE = f"{LABEL} == 'feature'"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def first_run_events(*, writer_fails: bool = False) -> tuple[list[Event], dict[str, AgentResult]]:
    """planner, writer over three sections (the second failing, or not), editor, and triage
    routing to plan_feature (fix_bug routed away). Costs differ by powers of two, so any
    dollar counted twice shows."""
    middle = failed("writer[1]", "BadRequestError: 400 too long") if writer_fails else None
    instances = [
        instance_of("writer", 0, SECTIONS[0], cost=0.1),
        instance_of("writer", 1, SECTIONS[1], middle, cost=0.2),
        instance_of("writer", 2, SECTIONS[2], cost=0.4),
    ]
    writer = fan_out_of("writer", instances)
    planner = succeeded("planner", json.dumps({"sections": SECTIONS}), cost=0.01)
    planner.value = {"sections": SECTIONS}
    if writer_fails:
        editor = not_run("editor", AgentStatus.SKIPPED, "dependency writer failed")
        editor.skip_cause = SkipCause.DEPENDENCY
    else:
        editor = succeeded("editor", "the report", cost=0.02)
    triage = succeeded("triage", '{"label": "feature"}', cost=0.04)
    fix_bug = routed_away("fix_bug", BUG, {LABEL: "feature"})
    plan_feature = routed_to(
        succeeded("plan_feature", "a plan", cost=0.08), FEATURE, {LABEL: "feature"}
    )
    events: list[Event] = [AgentFinished(planner), *fan_out_events("writer", writer)]
    events += [AgentFinished(r) for r in (editor, triage, fix_bug, plan_feature)]
    agents = {r.name: r for r in (planner, writer, editor, triage, fix_bug, plan_feature)}
    return events, agents


def runs_of(db: Path, workflow_run_id: int) -> list[sqlite3.Row]:
    return rows(db, "SELECT * FROM runs WHERE workflow_run_id = ? ORDER BY id", workflow_run_id)


@pytest.mark.parametrize("listed", ["agents only", "instances listed too"])
def test_instances_are_rows_of_their_agent_and_each_dollar_is_counted_once(
    db: str, listed: str
) -> None:
    events, agents = first_run_events()
    if listed == "instances listed too":  # the run's result may list them under their keys
        agents |= {i.name: i for i in agents["writer"].instances or []}
    with open_database(db) as store:
        run_id = record_events(store, FLOW, events, RunStatus.SUCCEEDED, agents=agents)

    recorded = runs_of(db, run_id)
    assert [(r["agent"], r["item_index"], r["item_count"]) for r in recorded] == [
        ("planner", None, None),
        ("writer", 0, None),
        ("writer", 1, None),
        ("writer", 2, None),
        ("writer", None, 3),
        ("editor", None, None),
        ("triage", None, None),
        ("fix_bug", None, None),
        ("plan_feature", None, None),
    ]
    instances = recorded[1:4]
    assert [r["item"] for r in instances] == [
        '{"title":"Intro"}',
        '{"title":"Body","words":300}',  # canonical: keys sorted, no spaces
        '{"title":"End"}',
    ]
    assert [(r["cost"], r["input_tokens"], r["status"]) for r in instances] == [
        (0.1, 100, "succeeded"),
        (0.2, 100, "succeeded"),
        (0.4, 100, "succeeded"),
    ]
    fan_out = recorded[4]
    assert (fan_out["cost"], fan_out["input_tokens"], fan_out["output_tokens"]) == (0.0, 0, 0)
    assert json.loads(fan_out["value"]) == ["section 0", "section 1", "section 2"]
    attempts = rows(db, "SELECT run_id, count(*) AS n FROM attempts GROUP BY run_id")
    assert {r["run_id"]: r["n"] for r in attempts}.get(fan_out["id"]) is None  # it made no call
    assert all({r["run_id"]: r["n"] for r in attempts}[i["id"]] == 1 for i in instances)

    fix_bug, plan_feature = recorded[7], recorded[8]
    assert (fix_bug["status"], fix_bug["skip_cause"]) == ("skipped", "routed")
    assert json.loads(fix_bug["decision"]) == {
        "expression": BUG,
        "held": False,
        "values": {LABEL: "feature"},
    }
    assert plan_feature["skip_cause"] is None
    assert json.loads(plan_feature["decision"])["held"] is True
    assert all(r["decision"] is None for r in recorded[:7])

    # 0.01 + 0.1 + 0.2 + 0.4 + 0.02 + 0.04 + 0.08: the fan-out agent's 0.7 is not added again.
    total = 0.85
    (run,) = rows(db, "SELECT cost, input_tokens, status FROM workflow_runs")
    assert run["cost"] == pytest.approx(total) and run["input_tokens"] == 700
    assert sum(r["cost"] for r in recorded) == pytest.approx(total)
    reader = history_reader(db, read_only=True)
    try:
        (spent,) = reader.spend(by=None)
        assert spent.cost == pytest.approx(total)
        assert spent.agent_runs == 8  # each instance an agent run; the fan-out agent's row is not
        (by_model,) = reader.spend(by=CostGrouping.model)
        assert by_model.cost == pytest.approx(total)
        (listed_run,) = reader.workflow_runs()
        # the workflow's agents, however many items
        assert (listed_run.agents_total, listed_run.agents_succeeded) == (6, 5)
    finally:
        reader.close()


def test_an_instances_tool_calls_and_start_row_are_its_own(db: str) -> None:
    events, _ = first_run_events()
    call = ToolCallRecord(1, "call-1", "lookup", '{"q": "body"}', "succeeded", T0, 0.1, "found")
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(FLOW))
        for event in events:
            recorder(event)
            if isinstance(event, FanOutStarted):
                assert [r["agent"] for r in rows(db, "SELECT agent FROM agent_starts")] == [
                    "writer"
                ]  # the fan-out agent is running
            if isinstance(event, AgentStarted) and event.name == "writer[1]":
                recorder(ToolCallFinished("writer[1]", call))
                starts = {r["agent"] for r in rows(db, "SELECT agent FROM agent_starts")}
                assert starts == {"writer", "writer[1]"}  # writer[0] settled
                calls = rows(db, "SELECT agent, run_id FROM tool_calls")
                assert [tuple(r) for r in calls] == [("writer[1]", None)]
            if isinstance(event, AgentFinished) and event.result.name == "writer":
                assert rows(db, "SELECT agent FROM agent_starts") == []
        run_id = recorder.workflow_run_id
    instance = rows(
        db,
        "SELECT id FROM runs WHERE agent = 'writer' AND item_index = 1 AND workflow_run_id = ?",
        run_id,
    )[0]
    assert [tuple(r) for r in rows(db, "SELECT agent, run_id FROM tool_calls")] == [
        ("writer[1]", instance["id"])
    ]
    reader = history_reader(db, read_only=True)
    try:
        assert [c.tool for c in reader.tool_calls(instance["id"])] == ["lookup"]
        found = reader.agent_run_in(run_id, "writer[1]")
        assert found is not None and (found.id, found.name) == (instance["id"], "writer[1]")
        whole = reader.agent_run_in(run_id, "writer")
        assert whole is not None and (whole.item_count, whole.item_index) == (3, None)
        assert reader.agent_run_in(run_id, "writer[7]") is None
    finally:
        reader.close()


def test_instances_are_on_disk_as_they_settle_before_the_last_agent(db: str) -> None:
    """The last agents of a run without tools wait for its end; a fan-out's instances are not
    agents of the workflow, so they never count as its last ones."""
    with open_database(db) as store:
        recorder = RunRecorder(store)
        recorder(started(FLOW))
        for name in ("triage", "editor", "fix_bug", "plan_feature"):  # four of six settled
            recorder(AgentFinished(not_run(name, AgentStatus.SKIPPED, "test")))
        recorder(AgentFinished(succeeded("planner", "{}")))
        for index in range(3):
            recorder(AgentFinished(instance_of("writer", index, {"n": index})))
            written = rows(db, "SELECT item_index FROM runs WHERE item_index IS NOT NULL")
            assert len(written) == index + 1
        instances = [instance_of("writer", i, {"n": i}) for i in range(3)]
        recorder(AgentFinished(fan_out_of("writer", instances)))
        assert rows(db, "SELECT 1 FROM runs WHERE item_count IS NOT NULL") == []  # with the end


def test_the_end_records_instances_whose_own_events_were_missed(db: str) -> None:
    events, agents = first_run_events()
    call = ToolCallRecord(1, "c", "lookup", "{}", "failed", T0, 0.1, error="boom")
    kept = [e for e in events if not (isinstance(e, AgentFinished) and e.result.agent)]
    kept.insert(2, ToolCallFinished("writer[2]", call))
    with open_database(db) as store:
        run_id = record_events(store, FLOW, kept, RunStatus.SUCCEEDED, agents=agents)
    recorded = runs_of(db, run_id)
    assert sorted(r["item_index"] for r in recorded if r["item_index"] is not None) == [0, 1, 2]
    linked = rows(db, "SELECT r.item_index FROM tool_calls c JOIN runs r ON r.id = c.run_id")
    assert [r["item_index"] for r in linked] == [2]
    assert rows(db, "SELECT cost FROM workflow_runs")[0]["cost"] == pytest.approx(0.85)


def test_the_detail_groups_instances_under_their_agent_in_item_order(db: str) -> None:
    events, agents = first_run_events(writer_fails=True)
    # The second item settles last: the detail still lists them in item order.
    order = [
        e for e in events if not (isinstance(e, AgentFinished) and e.result.name == "writer[1]")
    ]
    at = order.index(
        next(e for e in order if isinstance(e, AgentFinished) and e.result.name == "writer")
    )
    order.insert(at, AgentFinished((agents["writer"].instances or [])[1]))
    with open_database(db) as store:
        run_id = record_events(store, FLOW, order, RunStatus.FAILED, agents=agents)
    reader = history_reader(db, read_only=True)
    try:
        detail = reader.workflow_run(run_id)
    finally:
        reader.close()
    assert [a.name for a in detail.agents] == [
        "planner",
        "writer",
        "editor",
        "triage",
        "fix_bug",
        "plan_feature",
    ]
    writer = detail.agents[1]
    assert writer.instances is not None and writer.item_count == 3
    assert [(i.name, i.status, i.parsed_item) for i in writer.instances] == [
        ("writer[0]", "succeeded", SECTIONS[0]),
        ("writer[1]", "failed", SECTIONS[1]),
        ("writer[2]", "succeeded", SECTIONS[2]),
    ]
    assert [len(i.attempts) for i in writer.instances] == [1, 1, 1]
    assert [a.name for a in detail.every_agent_run()][1:5] == [
        "writer[0]",
        "writer[1]",
        "writer[2]",
        "writer",
    ]
    editor, fix_bug = detail.agents[2], detail.agents[4]
    assert (editor.skip_cause, fix_bug.skip_cause) == ("dependency", "routed")
    assert fix_bug.decision == Decision(BUG, False, {LABEL: "feature"})
    assert detail.agents[0].instances is None

    data = detail.to_json()
    writer_json = data["agents"][1]
    assert (writer_json["name"], writer_json["item_count"], writer_json["item_index"]) == (
        "writer",
        3,
        None,
    )
    assert [
        (i["name"], i["agent"], i["item_index"], i["item"]) for i in writer_json["instances"]
    ] == [
        ("writer[0]", "writer", 0, SECTIONS[0]),
        ("writer[1]", "writer", 1, SECTIONS[1]),
        ("writer[2]", "writer", 2, SECTIONS[2]),
    ]
    assert data["agents"][4]["decision"] == {
        "expression": BUG,
        "held": False,
        "values": {LABEL: "feature"},
    }
    assert data["agents"][0]["instances"] is None and "instances" not in detail.agents[0].to_json()


def test_resume_reuses_succeeded_instances_and_every_decision(db: str) -> None:
    events, agents = first_run_events(writer_fails=True)
    with open_database(db) as store:
        first = record_events(store, FLOW, events, RunStatus.FAILED, agents=agents)
        state = load_resume_state(store, first)
        assert sorted(state.succeeded) == [
            "plan_feature",
            "planner",
            "triage",
            "writer[0]",
            "writer[2]",
        ]
        second_item = state.succeeded["writer[2]"]
        assert (second_item.agent, second_item.item_index, second_item.item) == (
            "writer",
            2,
            SECTIONS[2],
        )
        assert second_item.reused and second_item.cost == pytest.approx(0.4)
        assert second_item.agent_name == "writer" and second_item.output == "section 2"
        assert state.decisions == {
            "fix_bug": Decision(BUG, False, {LABEL: "feature"}),
            "plan_feature": Decision(FEATURE, True, {LABEL: "feature"}),
        }
        assert state.succeeded["plan_feature"].decision == state.decisions["plan_feature"]
        assert state.cost_spent == pytest.approx(0.01 + 0.1 + 0.4 + 0.04 + 0.08)

        # The resume runs the failed item, the fan-out agent and what needed it; fix_bug is
        # routed away again by the reused decision, and the editor fails this time.
        again = instance_of("writer", 1, SECTIONS[1], cost=0.2)
        reused_items = [state.succeeded["writer[0]"], again, state.succeeded["writer[2]"]]
        writer = fan_out_of("writer", reused_items)
        editor = failed("editor", "BadRequestError: 400")
        fix_bug = routed_away("fix_bug", BUG, {LABEL: "feature"})
        statements: list[str] = []
        sqlite = isinstance(store, Store)  # the query plans checked are SQLite's
        if sqlite:
            store.connection.set_trace_callback(statements.append)
        second = record_events(
            store,
            FLOW,
            [
                AgentStarted("writer[1]", "gpt-4o-mini", "openai", "[user]", T0),
                AgentFinished(again),
                AgentFinished(writer),
                AgentFinished(editor),
                AgentFinished(fix_bug),
            ],
            RunStatus.FAILED,
            resumed_from=first,
            reused=state.succeeded,
        )
        if sqlite:
            store.connection.set_trace_callback(None)
        origins = [s for s in statements if "coalesce(reused_from_run_id, id)" in s]
        assert len(origins) == (5 if sqlite else 0)
        for sql in origins:  # one lookup per reused instance, not a pass over the run
            plan = [r[3] for r in store.connection.execute(f"EXPLAIN QUERY PLAN {sql}")]
            assert plan == [
                "SEARCH runs USING INDEX runs_by_agent (workflow_run_id=? AND agent=? AND item_index=?)"
            ], plan

        recorded = runs_of(db, second)
        reused = [
            (r["agent"], r["item_index"], r["reused_from_run_id"], r["cost"])
            for r in recorded
            if r["reused"]
        ]
        origin = {(r["agent"], r["item_index"]): r["id"] for r in runs_of(db, first)}
        assert sorted(reused, key=str) == sorted(
            [
                ("planner", None, origin["planner", None], 0.0),
                ("triage", None, origin["triage", None], 0.0),
                ("plan_feature", None, origin["plan_feature", None], 0.0),
                ("writer", 0, origin["writer", 0], 0.0),
                ("writer", 2, origin["writer", 2], 0.0),
            ],
            key=str,
        )
        reused_plan = next(r for r in recorded if r["agent"] == "plan_feature")
        assert json.loads(reused_plan["decision"])["held"] is True  # the decision travels on
        # This run spent only what it called: the second item (0.2); the editor failed free.
        assert rows(db, "SELECT cost FROM workflow_runs WHERE id = ?", second)[0][
            "cost"
        ] == pytest.approx(0.2)
        assert chain_spend(store, second) == pytest.approx(0.63 + 0.2)

        state = load_resume_state(store, second)
        assert "writer" in state.succeeded and "editor" not in state.succeeded
        whole = state.succeeded["writer"]
        assert whole.item_count == 3 and whole.reused
        assert [(i.name, i.item_index, i.cost) for i in whole.instances or []] == [
            ("writer[0]", 0, pytest.approx(0.1)),  # as first paid, through the reused row
            ("writer[1]", 1, pytest.approx(0.2)),
            ("writer[2]", 2, pytest.approx(0.4)),
        ]
        assert whole.value == ["section 0", "section 1", "section 2"]
        assert sorted(state.decisions) == ["fix_bug", "plan_feature"]
        assert state.cost_spent == pytest.approx(0.83)


def test_a_fan_out_agent_with_a_failed_item_is_not_reused_though_it_succeeded(
    db: str,
) -> None:
    """With ``on_item_error: continue`` the agent succeeds with a null item; a resume reuses
    the items that succeeded and runs it again for the one that failed."""
    instances = [
        instance_of("writer", 0, "a"),
        instance_of("writer", 1, "b", failed("writer[1]", "400")),
    ]
    writer = fan_out_of("writer", instances)
    writer.status, writer.error = AgentStatus.SUCCEEDED, None
    with open_database(db) as store:
        run_id = record_events(store, FLOW, fan_out_events("writer", writer), RunStatus.FAILED)
        state = load_resume_state(store, run_id)
    assert sorted(state.succeeded) == ["writer[0]"]


def test_an_empty_fan_out_and_one_left_unstarted_by_the_cap(db: str) -> None:
    empty = fan_out_of("writer", [])
    capped = fan_out_of("writer", [instance_of("writer", 0, "a")], item_count=4)
    with open_database(db) as store:
        first = record_events(store, FLOW, fan_out_events("writer", empty), RunStatus.FAILED)
        second = record_events(store, FLOW, fan_out_events("writer", capped), RunStatus.FAILED)
        state = load_resume_state(store, first)
        assert state.succeeded["writer"].instances == [] and state.succeeded["writer"].value == []
        assert sorted(load_resume_state(store, second).succeeded) == ["writer[0]"]
    reader = history_reader(db, read_only=True)
    try:
        (empty_row,) = reader.workflow_run(first).agents
        assert (empty_row.status, empty_row.item_count, empty_row.instances) == ("succeeded", 0, [])
        (capped_row,) = reader.workflow_run(second).agents
        assert capped_row.item_count == 4 and [i.name for i in capped_row.instances or []] == [
            "writer[0]"
        ]
    finally:
        reader.close()


def test_a_run_killed_mid_fan_out_shows_its_instances_and_resumes_them(db: str) -> None:
    events: list[Event] = [
        FanOutStarted("writer", 3, T0),
        AgentFinished(instance_of("writer", 0, "a")),
        AgentFinished(instance_of("writer", 2, "c")),
        AgentFinished(succeeded("triage", "x")),  # so the instances are written as they settle
    ]
    with open_database(db) as store:
        run_id = record_events(store, FLOW, events, None)
        store.connection.execute("UPDATE workflow_runs SET pid = ?", (dead_pid(),))
        state = load_resume_state(store, run_id)
    assert state.status == "interrupted"
    assert sorted(state.succeeded) == ["triage", "writer[0]", "writer[2]"]
    reader = history_reader(db, read_only=True)
    try:
        # No row of the fan-out agent: its instances stand on their own.
        assert [a.name for a in reader.workflow_run(run_id).agents] == [
            "writer[0]",
            "writer[2]",
            "triage",
        ]
        assert [s.agent for s in reader.agent_starts(run_id)] == ["writer"]
    finally:
        reader.close()


def test_batch_rows_give_a_fan_outs_list_and_routing_away_is_no_error(db: str) -> None:
    events, agents = first_run_events()
    with open_database(db) as store:
        writer = SqliteHistoryWriter(store)
        batch_id = writer.create_batch(
            workflow="report",
            definition="",
            source_path=None,
            data_path="rows.jsonl",
            data_sha256="0" * 64,
            row_count=1,
            input_map={},
            cost_cap=None,
            started_at=T0,
        )
        recorder = RunRecorder(writer)
        recorder(replace(started(FLOW), batch_id=batch_id, batch_row=0))
        for event in events:
            recorder(event)
        recorder(finished(FLOW, agents, RunStatus.SUCCEEDED))
        writer.finish_batch(batch_id, status="succeeded", finished_at=T0 + 20, pauses=0, paused=0.0)
    reader = history_reader(db, read_only=True)
    try:
        (outcome,) = reader.batch_row_outcomes(batch_id)
        assert outcome.status == "succeeded" and outcome.error is None
        assert outcome.outputs["writer"] == ["section 0", "section 1", "section 2"]
        assert sorted(outcome.outputs) == sorted(agents)  # no instance keys
        assert outcome.cost == pytest.approx(0.85)
        assert reader.batch_spend(batch_id) == pytest.approx(0.85)
        assert reader.batch(batch_id).cost == pytest.approx(0.85)
    finally:
        reader.close()


def test_instance_keys_split_back_into_agent_and_index() -> None:
    assert split_instance_key("writer[12]") == ("writer", 12)
    assert split_instance_key("writer") == ("writer", None)
    assert split_instance_key("w-1[0]") == ("w-1", 0)
    assert split_instance_key("writer[x]") == ("writer[x]", None)


def test_a_file_at_migration_10_keeps_its_rows(tmp_path: Path) -> None:
    """SQLite only: no PostgreSQL history predates migration 13, which came with PostgreSQL."""
    db = tmp_path / "agentops.db"
    migrated_to(db, 10)
    connection = sqlite3.connect(db)
    connection.execute(
        "INSERT INTO workflow_runs (workflow, status, definition, cost, started_at, finished_at) "
        "VALUES ('w', 'failed', 'name: w', 0.5, '2024-05-01T12:00:00.000000+00:00', "
        "'2024-05-01T12:00:10.000000+00:00')"
    )
    connection.executemany(
        "INSERT INTO runs (workflow_run_id, workflow, agent, status, cost, output, error, value, "
        "finished_at) VALUES (1, 'w', ?, ?, ?, ?, ?, ?, '2024-05-01T12:00:05.000000+00:00')",
        [
            ("a", "succeeded", 0.5, '{"x": 1}', None, '{"x": 1}'),
            ("b", "skipped", 0.0, None, "needs a", None),
        ],
    )
    connection.commit()
    connection.close()

    with open_database(db) as store:
        state = load_resume_state(store, 1)
    applied = [r["number"] for r in rows(db, "SELECT number FROM _migrations ORDER BY number")]
    assert 11 in applied and applied[-1] == MIGRATIONS[-1].number
    kept = rows(
        db,
        "SELECT agent, status, cost, value, item_index, item_count, skip_cause, decision FROM runs",
    )
    assert [tuple(r) for r in kept] == [
        ("a", "succeeded", 0.5, '{"x": 1}', None, None, None, None),
        ("b", "skipped", 0.0, None, None, None, None, None),
    ]
    assert sorted(state.succeeded) == ["a"] and state.succeeded["a"].value == {"x": 1}
    assert state.decisions == {} and state.cost_spent == pytest.approx(0.5)
    reader = history_reader(db, read_only=True)
    try:
        detail = reader.workflow_run(1)
        assert [(a.name, a.instances, a.skip_cause) for a in detail.agents] == [
            ("a", None, None),
            ("b", None, None),
        ]
        assert reader.spend(by=None)[0].cost == pytest.approx(0.5)
    finally:
        reader.close()


def test_recording_inside_an_event_loop_commits_instances_before_their_agent_settles(
    db: str,
) -> None:
    """As the engine runs it: instances settling in one loop turn share a commit, which lands
    before the fan-out agent's dependents can start."""

    async def scenario() -> list[int]:
        with open_database(db) as store:
            recorder = RunRecorder(store)
            recorder(started(FLOW))
            recorder(FanOutStarted("writer", 2, T0))
            recorder(AgentFinished(instance_of("writer", 0, "a")))
            recorder(AgentFinished(instance_of("writer", 1, "b")))
            await asyncio.sleep(0)
            return [r["item_index"] for r in rows(db, "SELECT item_index FROM runs ORDER BY id")]

    assert asyncio.run(scenario()) == [0, 1]


def test_resume_hands_the_recorded_decisions_and_instances_to_the_engine(db: str) -> None:
    import agentops
    from agentops import FakeProvider
    from tests.support.store import record, workflow_of

    workflow = workflow_of("routes", ["triage", "fix_bug", "reply"])
    decision = Decision("triage.output == 'bug'", False, {"triage.output": "feature"})
    routed = routed_away("fix_bug", "triage.output == 'bug'", {"triage.output": "feature"})
    with open_database(db) as store:
        run_id = record(
            store,
            workflow,
            [succeeded("triage", "feature"), routed, failed("reply", "BadRequestError: 400")],
            RunStatus.FAILED,
        )
    engines: list[Engine] = []
    agentops.resume(run_id, db=db, provider=FakeProvider(), control=engines.append)
    (engine,) = engines
    assert dict(engine.options.decisions) == {"fix_bug": decision}
    assert sorted(engine.options.reused) == ["triage"]
