"""Tool calls as the terminal and the recorder see them: the live view shows a call in
progress, plain lines print each finished call, and the recorder writes a call when it
finishes (before its agent settles) and links it to the agent run afterwards."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from agentops.runtime.events import (
    AgentFinished,
    AgentStarted,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
    ToolServerStopped,
)
from agentops.store import RunRecorder, open_store
from agentops.ui.live import LiveReporter
from agentops.ui.plain import plain_lines
from tests.support.reliability import rows
from tests.support.store import started, succeeded, workflow_of
from tests.support.ui import demo_workflow, text_console
from tests.support.ui import started as ui_started


def call(status: str = "succeeded", **fields: object) -> ToolCallRecord:
    values: dict[str, object] = {
        "turn": 1,
        "call_id": "call_1",
        "tool": "kb.lookup",
        "arguments": '{"key": "alpha"}',
        "status": status,
        "started_at": 1000.0,
        "duration": 0.25,
        "result": "1",
        "error": None,
        **fields,
    }
    return ToolCallRecord(**values)  # type: ignore[arg-type]


def test_the_live_view_shows_a_call_in_progress_and_never_server_stderr() -> None:
    reporter = LiveReporter(text_console(terminal=True, width=120), clock=lambda: 1002.0)
    for event in (
        ui_started(demo_workflow(), at=1000.0),
        AgentStarted("researcher", "gpt-4o", "openai", "p", 1001.0),
        ToolCallStarted("researcher", 1, "call_1", "kb.lookup", '{"key": "alpha"}', 1001.5),
        ToolServerStopped(
            "kb", "stdio", "python kb.py", ("lookup",), "SECRET-STDERR-LINE", 1000.0, 1002.0
        ),
    ):
        reporter(event)
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=40, record=True)
    console.print(reporter.view)
    view = console.export_text(styles=False)
    line = next(line for line in view.splitlines() if line.strip().startswith("researcher"))
    assert "kb.lookup {key: alpha} …" in line
    assert "SECRET-STDERR-LINE" not in view
    reporter(ToolCallFinished("researcher", call()))
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=40, record=True)
    console.print(reporter.view)
    assert "kb.lookup" not in console.export_text(styles=False)


def test_plain_lines_print_each_finished_call() -> None:
    assert plain_lines(ToolCallFinished("researcher", call())) == [
        "researcher called kb.lookup {key: alpha}: ok in 0.2s"
    ]
    failed = call("failed", result=None, error="no result within 30s (the tool's timeout)")
    assert plain_lines(ToolCallFinished("researcher", failed)) == [
        "researcher called kb.lookup {key: alpha}: failed: no result within 30s (the tool's timeout)"
    ]


def test_a_call_is_recorded_when_it_finishes_and_linked_when_its_agent_settles(
    tmp_path: Path,
) -> None:
    db = tmp_path / "h.db"
    with open_store(db) as store:
        recorder = RunRecorder(store)
        recorder(started(workflow_of("flow", ["a"])))
        recorder(ToolCallFinished("a", call()))
        recorder._flush_pending()  # what the loop's callback does at the end of this turn
        (row,) = rows(db, "SELECT * FROM tool_calls")
        assert (row["agent"], row["tool"], row["status"], row["run_id"]) == (
            "a",
            "kb.lookup",
            "succeeded",
            None,
        )
        recorder(AgentFinished(succeeded("a", "done")))
        recorder._flush_pending()
    (run,) = rows(db, "SELECT id FROM runs")
    assert rows(db, "SELECT run_id FROM tool_calls")[0]["run_id"] == run["id"]
