"""Shared pieces of the store tests: synthetic engine events built by hand, a recorded
run driven through a ``RunRecorder``, a history file as the sketch's original
program left it, and reading a database directly with ``sqlite3``."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    Decision,
    Event,
    FanOutStarted,
    RunStatus,
    SkipCause,
    Usage,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
    instance_key,
)
from agentops.store import RunRecorder, Store
from agentops.store.stores import open_database
from agentops.workflow.spec import Agent, Policies, Workflow

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def workflow_of(name: str, agents: Iterable[str], *, cost_cap: float | None = None) -> Workflow:
    return Workflow(
        name=name,
        policies=Policies(cost_cap=cost_cap),
        agents=[Agent(name=agent, model="gpt-4o-mini", task=f"do {agent}") for agent in agents],
    )


def source_of(workflow: Workflow) -> str:
    return yaml.safe_dump(workflow.model_dump(mode="json", exclude_defaults=True), sort_keys=False)


def started(
    workflow: Workflow,
    *,
    inputs: Mapping[str, Any] | None = None,
    resumed_from: int | None = None,
    reused: Mapping[str, AgentResult] | None = None,
    at: float = T0,
) -> WorkflowStarted:
    return WorkflowStarted(
        workflow=workflow,
        source=source_of(workflow),
        source_path=f"{workflow.name}.yaml",
        inputs=dict(inputs or {}),
        started_at=at,
        resumed_from=resumed_from,
        reused=dict(reused or {}),
        cost_cap=workflow.policies.cost_cap,
    )


def succeeded(
    name: str, output: str, *, at: float = T0, cost: float = 0.002, failures: int = 0
) -> AgentResult:
    """A succeeded agent after ``failures`` failed attempts (HTTP 503) and one good one."""
    attempts = [
        Attempt(
            number=n + 1,
            status="failed",
            started_at=at + n,
            duration=0.5,
            cost=0.0,
            error="ServerError: 503 upstream busy",
            error_type="ServerError",
            http_status=503,
        )
        for n in range(failures)
    ]
    attempts.append(
        Attempt(
            number=failures + 1,
            status="succeeded",
            started_at=at + failures,
            duration=1.0,
            usage=Usage(100, 50),
            cost=cost,
        )
    )
    return AgentResult(
        name=name,
        status=AgentStatus.SUCCEEDED,
        model="gpt-4o-mini",
        provider="openai",
        output=output,
        prompt=f"[user]\ndo {name}",
        usage=Usage(100, 50),
        cost=cost,
        attempts=attempts,
        started_at=at,
        finished_at=at + failures + 1.0,
    )


def failed(name: str, error: str, *, at: float = T0, http_status: int = 400) -> AgentResult:
    attempt = Attempt(
        number=1,
        status="failed",
        started_at=at,
        duration=0.25,
        cost=0.0,
        error=error,
        error_type="BadRequestError",
        http_status=http_status,
    )
    return AgentResult(
        name=name,
        status=AgentStatus.FAILED,
        model="gpt-4o-mini",
        provider="openai",
        error=error,
        prompt=f"[user]\ndo {name}",
        attempts=[attempt],
        started_at=at,
        finished_at=at + 0.25,
        cost=0.0,
    )


def not_run(name: str, status: AgentStatus, reason: str, *, at: float = T0) -> AgentResult:
    """A skipped or cancelled agent: no attempts, no usage."""
    return AgentResult(
        name=name,
        status=status,
        model="gpt-4o-mini",
        provider="openai",
        error=reason,
        finished_at=at,
        cost=0.0,
    )


def finished(
    workflow: Workflow,
    results: Mapping[str, AgentResult],
    status: RunStatus,
    *,
    started_at: float = T0,
) -> WorkflowFinished:
    """The end of a run that started at ``started_at`` and took ten seconds."""
    return WorkflowFinished(
        WorkflowResult(
            workflow=workflow.name,
            status=status,
            agents=dict(results),
            started_at=started_at,
            finished_at=started_at + 10,
            cost_cap=workflow.policies.cost_cap,
        )
    )


def record(
    store: Store,
    workflow: Workflow,
    results: Iterable[AgentResult],
    status: RunStatus | None,
    **start: Any,
) -> int:
    """Drive a RunRecorder through one run; ``status`` None stops before WorkflowFinished
    (as a killed process would). Returns the workflow run id."""
    recorder = RunRecorder(store)
    event = started(workflow, **start)
    recorder(event)
    settled = dict(event.reused)
    for result in results:
        recorder(AgentFinished(result))
        settled[result.name] = result
    if status is not None:
        recorder(finished(workflow, settled, status, started_at=event.started_at))
    assert recorder.workflow_run_id is not None
    return recorder.workflow_run_id


# --- fan-out and routing, as the engine emits them -------------------------------------------


def fan_out_workflow(name: str = "report", *, cost_cap: float | None = None) -> Workflow:
    """planner -> writer (one per section) -> editor; triage -> fix_bug / plan_feature (routed)."""
    model = "gpt-4o-mini"
    return Workflow(
        name=name,
        policies=Policies(cost_cap=cost_cap),
        agents=[
            Agent(name="planner", model=model, task="Outline a report."),
            Agent(
                name="writer",
                model=model,
                task="Write {{ item.title }}.",
                for_each="planner.output.sections",
            ),
            Agent(name="editor", model=model, task="Join {{ writer.output }}", depends_on="writer"),
            Agent(name="triage", model=model, task="Classify."),
            Agent(
                name="fix_bug",
                model=model,
                task="Fix it.",
                depends_on="triage",
                when="triage.output.label == 'bug'",
            ),
            Agent(
                name="plan_feature",
                model=model,
                task="Plan it.",
                depends_on="triage",
                when="triage.output.label == 'feature'",
            ),
        ],
    )


def instance_of(
    agent: str, index: int, item: Any, result: AgentResult | None = None, *, cost: float = 0.1
) -> AgentResult:
    """Item ``index`` of fan-out ``agent``: ``result`` (named ``writer[2]``), or one that succeeded."""
    key = instance_key(agent, index)
    if result is None:
        result = succeeded(key, f"section {index}", cost=cost)
    result.name, result.agent, result.item_index, result.item = key, agent, index, item
    return result


def fan_out_of(
    agent: str, instances: list[AgentResult], *, item_count: int | None = None
) -> AgentResult:
    """The fan-out agent's own result, as the engine settles it: the list of its items'
    outputs, its instances, and their usage and cost summed (it made no call itself)."""
    ok = all(i.status is AgentStatus.SUCCEEDED for i in instances)
    count = len(instances) if item_count is None else item_count
    ok = ok and count == len(instances)
    outputs = [i.output if i.status is AgentStatus.SUCCEEDED else None for i in instances]
    usage = Usage()
    for i in instances:
        usage = usage + i.usage
    return AgentResult(
        name=agent,
        status=AgentStatus.SUCCEEDED if ok else AgentStatus.FAILED,
        model="gpt-4o-mini",
        provider="openai",
        output=json.dumps(outputs),
        value=outputs,
        error=None
        if ok
        else f"{count - sum(i.status is AgentStatus.SUCCEEDED for i in instances)} of {count} items did not succeed",
        usage=usage,
        cost=sum(i.cost or 0.0 for i in instances),
        started_at=T0,
        finished_at=T0 + 5,
        instances=instances,
        item_count=count,
    )


LABEL = "triage.output.label"


def routed_away(name: str, expression: str, values: Mapping[str, Any]) -> AgentResult:
    """An agent whose ``when`` was false: skipped, routed, with its decision."""
    shown = ", ".join(f"{path.rsplit('.', 1)[-1]}: {value!r}" for path, value in values.items())
    result = not_run(name, AgentStatus.SKIPPED, f"when {expression} was false ({shown})")
    result.skip_cause = SkipCause.ROUTED
    result.decision = Decision(expression, False, dict(values))
    return result


def routed_to(result: AgentResult, expression: str, values: Mapping[str, Any]) -> AgentResult:
    """``result`` of an agent whose ``when`` held."""
    result.decision = Decision(expression, True, dict(values))
    return result


def fan_out_events(agent: str, fan_out: AgentResult) -> list[Event]:
    """What the engine emits for a fan-out agent: its start, each instance's start and end,
    then its own end."""
    instances = fan_out.instances or []
    events: list[Event] = [FanOutStarted(agent, fan_out.item_count or len(instances), T0)]
    for instance in instances:
        events.append(AgentStarted(instance.name, "gpt-4o-mini", "openai", "[user]", T0))
        events.append(AgentFinished(instance))
    events.append(AgentFinished(fan_out))
    return events


def record_events(
    store: Store,
    workflow: Workflow,
    events: Iterable[Event],
    status: RunStatus | None,
    *,
    agents: Mapping[str, AgentResult] | None = None,
    **start: Any,
) -> int:
    """Drive a RunRecorder through ``events`` between the run's start and its end (``status``
    None: none, as a killed process). The end's agents: ``agents``, or every result settled
    (by name, fan-out instances only under their agent)."""
    recorder = RunRecorder(store)
    event = started(workflow, **start)
    recorder(event)
    settled: dict[str, AgentResult] = dict(event.reused)
    for each in events:
        recorder(each)
        if isinstance(each, AgentFinished) and each.result.item_index is None:
            settled[each.result.name] = each.result
    if status is not None:
        recorder(finished(workflow, settled if agents is None else agents, status))
    assert recorder.workflow_run_id is not None
    return recorder.workflow_run_id


def write_agent_events(db: str, name: str, agents: int, go: Any = None) -> int:
    """One writer process of the concurrency test: a whole run with ``agents`` agents."""
    if go is not None:
        go.wait()
    workflow = workflow_of(name, [f"agent{n}" for n in range(agents)])
    with open_database(db) as store:
        results = [
            succeeded(f"agent{n}", f"{name} output {n}", at=time.time()) for n in range(agents)
        ]
        return record(store, workflow, results, RunStatus.SUCCEEDED)


# --- the sketch's original program ------------------------------------------------------------

# Exactly what the sketch's storage.init_db() creates, and rows as its runner wrote them.
SKETCH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_run_id INTEGER,
    workflow TEXT,
    agent TEXT,
    status TEXT,
    cost REAL,
    output TEXT,
    error TEXT,
    retries INTEGER
)""",
    """CREATE TABLE IF NOT EXISTS workflow_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow TEXT,
    started_at DATETIME DEFAULT CURRENT_TIMESTAMP,
    finished_at DATETIME
)""",
)


def make_sketch_database(path: Path) -> None:
    """Two workflow runs: one finished (one agent succeeded, one failed), one never finished."""
    connection = sqlite3.connect(path)
    for statement in SKETCH_SCHEMA:
        connection.execute(statement)
    connection.execute(
        "INSERT INTO workflow_runs (workflow, started_at, finished_at) VALUES "
        "('research_summary', '2024-04-30 09:15:00', '2024-04-30 09:16:10')"
    )
    connection.execute(
        "INSERT INTO workflow_runs (workflow, started_at) VALUES ('research_summary', '2024-05-02 08:00:00')"
    )
    connection.executemany(
        "INSERT INTO runs (workflow_run_id, workflow, agent, status, cost, output, error, retries) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (1, "research_summary", "researcher", "success", 0.0125, "three requests", None, 0),
            (1, "research_summary", "summarizer", "failed", 0.0, None, "timeout", 2),
            (2, "research_summary", "researcher", "success", 0.01, "again", None, 1),
        ],
    )
    connection.commit()
    connection.close()


def is_postgres(db: str | Path) -> bool:
    return str(db).startswith("postgresql://")


def rows(db: str | Path, sql: str, *parameters: Any) -> list[Any]:
    """Rows of ``sql`` (``?`` placeholders) read straight from the database, past the store:
    with ``sqlite3``, or with psycopg for a ``postgresql://`` URL (rows as dicts there)."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), parameters or None)
            names = [column.name for column in cursor.description or ()]
            return [_Both(names, row) for row in cursor.fetchall()]
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def stored_bytes(db: str | Path) -> bytes:
    """Everything the history holds: a SQLite file with its WAL / shared-memory / journal
    companions, or every row of every table of a PostgreSQL database as text."""
    if is_postgres(db):
        tables = [
            r[0] for r in rows(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return "\n".join(
            str(r[0]) for table in tables for r in rows(db, f"SELECT t::text FROM {table} t")
        ).encode()
    path = Path(db)
    companions = (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal")))
    return b"".join(p.read_bytes() for p in companions if p.exists())


def execute(db: str | Path, sql: str, *parameters: Any, many: bool = False) -> None:
    """Change the database past the store (``?`` placeholders), committed."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as connection:
            text = sql.replace("?", "%s")
            if many:
                connection.cursor().executemany(text, parameters[0])
            else:
                connection.execute(text, parameters or None)
        return
    connection = sqlite3.connect(db)
    try:
        if many:
            connection.executemany(sql, parameters[0])
        else:
            connection.execute(sql, parameters)
        connection.commit()
    finally:
        connection.close()


class _Both(tuple[Any, ...]):
    """A psycopg row also read by column name, as ``sqlite3.Row`` is."""

    names: list[str]

    def __new__(cls, names: list[str], values: Iterable[Any]) -> _Both:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


def migrated_to(db: str | Path, last: int) -> None:
    """A new history as an older agentops left it: migrations 1 to ``last`` applied (each
    recorded as applied ``'then'``), on either store, past the store."""
    from agentops.store.migrations import MIGRATIONS, MIGRATIONS_TABLE

    applied = [m for m in MIGRATIONS if m.number <= last]
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as pg, pg.transaction():
            pg.execute(MIGRATIONS_TABLE)
            for migration in applied:
                for statement in migration.postgres_statements():
                    pg.execute(statement.encode())  # bytes: no placeholders, as the store does
                pg.execute(
                    "INSERT INTO _migrations VALUES (%s, %s, 'then')",
                    (migration.number, migration.name),
                )
        return
    connection = sqlite3.connect(db)
    try:
        connection.execute(MIGRATIONS_TABLE)
        for migration in applied:
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                "INSERT INTO _migrations VALUES (?, ?, 'then')", (migration.number, migration.name)
            )
        connection.commit()
    finally:
        connection.close()


def columns(db: str | Path, table: str) -> list[str]:
    if is_postgres(db):
        found = rows(
            db,
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            table,
        )
        return [row[0] for row in found]
    return [row["name"] for row in rows(db, f"PRAGMA table_info({table})")]
