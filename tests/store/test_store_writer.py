"""The history's write interface: a second ``HistoryWriter`` plugs into ``RunRecorder``
and the engine, the workflow run id is the engine's (whatever order subscribers are in),
and ``sqlite3`` is imported only under ``store/``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agentops import FakeProvider
from agentops.assembly import prepare
from agentops.runtime.engine import Engine, RunOptions
from agentops.runtime.events import (
    AgentResult,
    Event,
    RunStatus,
    ToolServerStopped,
    WorkflowFinished,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store import HistoryWriter, RunRecorder
from agentops.store.writer import AgentChanges
from agentops.workflow.loader import load_workflow_text

SRC = Path(__file__).resolve().parents[2] / "src" / "agentops"


class MemoryWriter:
    """A history kept in a list: what a second store implements, and nothing more."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def check_recordable(self, workflow: str) -> None:
        self.calls.append(("check", workflow))

    def start_workflow_run(self, start: WorkflowStarted) -> int:
        self.calls.append(("start", start.workflow.name))
        return 41

    def record_agents(self, workflow_run_id: int, workflow: str, changes: AgentChanges) -> None:
        self.calls.append(
            (
                "agents",
                (
                    workflow_run_id,
                    [c.name for c in changes.started],
                    [r.name for r in changes.settled],
                ),
            )
        )

    def heartbeat(self, workflow_run_id: int) -> None:  # pragma: no cover - a short run
        pass

    def record_tool_server(self, workflow_run_id: int, stopped: ToolServerStopped) -> None:
        self.calls.append(("server", stopped.server))

    def finish_workflow_run(
        self,
        workflow_run_id: int,
        workflow: str,
        result: WorkflowResult,
        *,
        missing: Sequence[AgentResult] = (),
        linked: Collection[str] = (),
    ) -> None:
        self.calls.append(("finish", (workflow_run_id, result.status, [a.name for a in missing])))

    def create_batch(self, **batch: Any) -> int:  # pragma: no cover - not used by a run
        return 1

    def take_over_batch(self, batch_id: int, *, cost_cap: float | None) -> None:  # pragma: no cover
        pass

    def finish_batch(  # pragma: no cover - not used by a run
        self, batch_id: int, *, status: str, finished_at: float, pauses: int, paused: float
    ) -> None:
        pass


def test_a_second_writer_records_a_run_and_its_id_is_on_the_result_for_every_subscriber() -> None:
    document = {
        "name": "memory",
        "agents": [
            {"name": "a", "model": "gpt-4o-mini", "task": "first"},
            {
                "name": "b",
                "model": "gpt-4o-mini",
                "task": "then {{ a.output }}",
                "depends_on": ["a"],
            },
        ],
    }
    loaded = load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="m.yaml")
    prepared = prepare(loaded, provider=FakeProvider({"*": "ok"}))
    writer = MemoryWriter()
    checked: HistoryWriter = writer  # the Protocol is all a store implements
    recorder = RunRecorder(checked)
    seen: list[int | None] = []

    def before_the_recorder(event: Event) -> None:
        if isinstance(event, WorkflowFinished):
            seen.append(event.result.workflow_run_id)

    engine = Engine(
        prepared.workflow,
        routes=prepared.routes,
        providers=prepared.registry.get,
        prices=prepared.prices,
        options=RunOptions(source=loaded.source, start_workflow_run=recorder.start_workflow_run),
        subscribers=[before_the_recorder, recorder],  # the recorder last: order does not matter
    )

    async def run() -> WorkflowResult:
        try:
            return await engine.run()
        finally:
            await prepared.registry.aclose()

    result = asyncio.run(run())
    assert result.status is RunStatus.SUCCEEDED
    assert result.workflow_run_id == 41 and seen == [41]
    assert writer.calls[0] == ("start", "memory")
    assert writer.calls[-1][0] == "finish" and writer.calls[-1][1][:2] == (41, RunStatus.SUCCEEDED)
    # An agent that starts and settles in one loop turn writes its outcome only.
    settled = [n for kind, call in writer.calls if kind == "agents" for n in call[2]]
    assert sorted(settled + writer.calls[-1][1][2]) == ["a", "b"]  # every outcome, once


def test_sqlite3_is_imported_only_under_store() -> None:
    importing = re.compile(r"^\s*(import sqlite3|from sqlite3 import)", re.MULTILINE)
    outside = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.parent.name != "store" and importing.search(path.read_text(encoding="utf-8"))
    ]
    assert outside == []


def test_nothing_outside_store_writes_sql() -> None:
    """Batches and runs write through the HistoryWriter: no INSERT or UPDATE elsewhere."""
    writing = re.compile(r"\b(INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")
    outside: Mapping[str, bool] = {
        str(path.relative_to(SRC)): True
        for path in SRC.rglob("*.py")
        if path.parent.name != "store" and writing.search(path.read_text(encoding="utf-8"))
    }
    assert list(outside) == []
