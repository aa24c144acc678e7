"""The plain-line reporter: one line per event for pipes and CI, then the summary."""

from __future__ import annotations

from agentops.runtime.events import (
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    CostWarning,
    Event,
    RunStatus,
    TokensStreamed,
    Usage,
    WorkflowFinished,
)
from agentops.ui import make_reporter
from agentops.ui.plain import PlainReporter
from tests.support.ui import (
    demo_workflow,
    finished,
    output_of,
    started,
    succeeded_result,
    text_console,
    workflow_result,
)


def test_make_reporter_picks_plain_lines_when_not_a_terminal() -> None:
    assert isinstance(make_reporter(text_console(terminal=False)), PlainReporter)
    assert isinstance(make_reporter(text_console(terminal=True), live=False), PlainReporter)


def test_each_event_prints_one_line_and_the_run_ends_with_a_summary() -> None:
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    failure = Attempt(1, "failed", 1000.0, 0.2, error="ServerError: 503 upstream busy")
    success = Attempt(2, "succeeded", 1001.4, 0.9, usage=Usage(120, 45), cost=0.0012)
    researcher = succeeded_result("researcher", output="facts", attempts=2)
    critic_error = "ServerError: 500 boom"
    critic = AgentResult(
        "critic",
        AgentStatus.FAILED,
        "gpt-4o",
        "openai",
        error=critic_error,
        attempts=[Attempt(n, "failed", 1000.0, 0.1, error=critic_error) for n in (1, 2, 3)],
        started_at=1000.0,
        finished_at=1004.0,
    )
    summarizer = AgentResult(
        "summarizer", AgentStatus.SKIPPED, "gpt-4o", "openai", error="critic failed"
    )
    events: list[Event] = [
        started(demo_workflow()),
        AgentStarted("researcher", "gpt-4o", "openai", "prompt", 1000.0),
        AttemptStarted("researcher", 1),
        TokensStreamed("researcher", "partial text"),
        AttemptFailed("researcher", failure, will_retry=True, retry_in=1.234),
        AttemptStarted("researcher", 2),
        AttemptSucceeded("researcher", success),
        finished(researcher),
        CostWarning("no known price for model 'mystery' (openai)"),
        AttemptFailed("critic", critic.attempts[-1], will_retry=False, retry_in=None),
        finished(critic),
        finished(summarizer),
        WorkflowFinished(
            workflow_result([researcher, critic, summarizer], status=RunStatus.FAILED)
        ),
    ]
    with reporter:
        for event in events:
            reporter(event)
    lines = output_of(console).splitlines()
    assert lines[:9] == [
        "workflow demo started: 3 agents, cost cap $1.00",
        "researcher started (gpt-4o via openai)",
        "researcher attempt 1 failed: ServerError: 503 upstream busy; retrying in 1.2s",
        "researcher attempt 2 started",
        "researcher succeeded in 2.3s: 120+45 tokens, $0.0012",
        "warning: no known price for model 'mystery' (openai)",
        "critic attempt 3 failed: ServerError: 500 boom",
        "critic failed after 3 attempts in 4.0s: ServerError: 500 boom",
        "summarizer skipped: critic failed",
    ]
    rest = "\n".join(lines[9:])
    assert "partial text" not in "\n".join(lines)  # streamed tokens are not printed
    # The summary table: one row per agent with attempts, tokens, cost and duration, and totals.
    assert "| researcher | succeeded |        2 | 120+45 | $0.0012 |     2.3s |" in rest
    assert "| critic     | failed    |        3 |    0+0 | $0.0000 |     4.0s |" in rest
    assert "| summarizer | skipped   |        0 |      - |       - |        - |" in rest
    assert "| total      | 1/3 ok    |        5 | 120+45 | $0.0012 |     5.0s |" in rest
    # Only the sink (summarizer) has its output shown; it has none.
    assert "summarizer output" in rest and "researcher output" not in rest
    assert "(no output: skipped)" in rest
    assert lines[-1] == (
        "workflow demo failed in 5.0s: 1/3 agents succeeded, 120+45 tokens, $0.0012 of $1.00 cap"
    )


def test_summary_prints_the_full_output_of_sink_agents() -> None:
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    long_answer = "first line\n" + "word " * 60 + "\nlast line"
    agents = [
        succeeded_result("researcher", output="not a sink"),
        succeeded_result("critic", output="also not a sink"),
        succeeded_result("summarizer", output=long_answer),
    ]
    with reporter:
        reporter(started(demo_workflow()))
        reporter(WorkflowFinished(workflow_result(agents)))
    text = output_of(console)
    # Unwrapped, unchanged: a log keeps the model's answer as written.
    assert long_answer in text
    assert "not a sink" not in text
    assert text.splitlines()[-1].startswith("workflow demo succeeded in 5.0s: 3/3 agents succeeded")


def test_markup_and_escape_sequences_in_model_text_are_shown_inert() -> None:
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m \x1b]52;c;ZXZpbA==\x07clip\rover"
    agents = [
        succeeded_result("researcher"),
        succeeded_result("critic"),
        succeeded_result("summarizer", output=hostile),
    ]
    failed_attempt = Attempt(
        1, "failed", 1000.0, 0.1, error="ServerError: [bold]bad[/] \x1b[2J\x07"
    )
    with reporter:
        reporter(started(demo_workflow()))
        reporter(AttemptFailed("critic", failed_attempt, will_retry=True, retry_in=0.5))
        reporter(TokensStreamed("summarizer", hostile))
        reporter(WorkflowFinished(workflow_result(agents)))
    text = output_of(console)
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "critic attempt 1 failed: ServerError: [bold]bad[/]; retrying in 0.5s" in text
    assert "[bold red]x[/] red clip\nover" in text


def test_reused_agents_and_resumed_runs_are_announced() -> None:
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    previous = succeeded_result("researcher")
    previous.reused = True
    reporter(
        started(demo_workflow(), reused={"researcher": previous}, resumed_from=7, cost_cap=2.5)
    )
    assert output_of(console).splitlines() == [
        "workflow demo started (resuming workflow run 7): 3 agents, cost cap $2.50",
        "researcher succeeded (reused)",
    ]


def test_no_cap_and_unknown_prices_are_said_plainly() -> None:
    workflow = demo_workflow().model_copy(
        update={"policies": demo_workflow().policies.model_copy(update={"cost_cap": None})}
    )
    console = text_console(terminal=False)
    reporter = make_reporter(console)
    unpriced = succeeded_result("summarizer", cost=None)
    reporter(started(workflow))
    reporter(finished(unpriced))
    agents = [succeeded_result("researcher"), succeeded_result("critic"), unpriced]
    reporter(WorkflowFinished(workflow_result(agents, cost_cap=None)))
    lines = output_of(console).splitlines()
    assert lines[0] == "workflow demo started: 3 agents, no cost cap"
    assert lines[1] == "summarizer succeeded in 2.3s: 120+45 tokens, ?"
    assert lines[-1].endswith("360+135 tokens, $0.0024 + unknown (no cap)")
