"""Shared pieces of the store tests: synthetic engine events built by hand, a recorded
run driven through a ``RunRecorder``, a history file as the sketch's original
program left it, and reading a database directly with ``sqlite3``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStatus,
    Attempt,
    RunStatus,
    Usage,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store import RunRecorder, Store, open_store
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


def write_agent_events(db: str, name: str, agents: int, go: Any = None) -> int:
    """One writer process of the concurrency test: a whole run with ``agents`` agents."""
    if go is not None:
        go.wait()
    workflow = workflow_of(name, [f"agent{n}" for n in range(agents)])
    with open_store(db) as store:
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


def rows(db: Path, sql: str, *parameters: Any) -> list[sqlite3.Row]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def columns(db: Path, table: str) -> list[str]:
    return [row["name"] for row in rows(db, f"PRAGMA table_info({table})")]
