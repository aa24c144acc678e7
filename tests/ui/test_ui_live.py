"""The live view: rows, statuses, previews and spend, bounded by the terminal height."""

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
    TokensStreamed,
    Usage,
    WorkflowFinished,
)
from agentops.ui import make_reporter
from agentops.ui.live import LiveReporter
from tests.support.ui import (
    FixedClock,
    demo_workflow,
    feed,
    finished,
    many_agents_workflow,
    output_of,
    render,
    row,
    started,
    succeeded_result,
    text_console,
    workflow_result,
)


def test_make_reporter_picks_the_live_view_on_a_terminal() -> None:
    assert isinstance(make_reporter(text_console(terminal=True, width=100)), LiveReporter)
    assert isinstance(make_reporter(text_console(terminal=False), live=True), LiveReporter)


def test_rows_show_status_time_tokens_cost_and_a_streaming_preview() -> None:
    clock = FixedClock(1005.0)
    reporter = LiveReporter(text_console(terminal=True, width=100), clock=clock)
    long_stream = "Intro line\n" + "".join(f"chunk{i} " for i in range(30)) + "\nend of the\tstream"
    failure = Attempt(
        1,
        "failed",
        1001.0,
        0.3,
        usage=Usage(10, 3, estimated=True),
        cost=0.0001,
        error="ServerError: 503 busy",
    )
    feed(
        reporter,
        [
            started(demo_workflow(), at=1000.0),
            AgentStarted("researcher", "gpt-4o", "openai", "p", 1001.0),
            AttemptStarted("researcher", 1),
            *[TokensStreamed("researcher", piece) for piece in long_stream.split(" ")],
            AgentStarted("critic", "gpt-4o", "openai", "p", 1002.0),
            AttemptStarted("critic", 1),
            TokensStreamed("critic", "discarded by the retry"),
            AttemptFailed("critic", failure, will_retry=True, retry_in=1.0),
        ],
    )
    view = render(reporter, width=140)  # wide enough for the whole 60-character preview
    assert view.splitlines()[0].split() == [
        "demo",
        "0/3",
        "done",
        "5.0s",
        "$0.0001",
        "of",
        "$1.00",
        "cap",
    ]
    assert view.splitlines()[1].split() == ["1", "running", "1", "retrying", "1", "waiting"]
    researcher = row(view, "researcher")
    assert researcher.startswith("researcher running 4.0s")
    flat = " ".join(
        long_stream.replace(" ", "").split()
    )  # what the pieces stream, newlines flattened
    assert researcher.endswith(
        " …" + flat[-59:]
    )  # the last 60 characters, starting with an ellipsis
    assert "Intro" not in researcher
    # Waiting to retry: the failed attempt's (estimated) usage and cost, and why it failed.
    assert row(view, "critic") == "critic retrying (1) 3.0s ~10+3 $0.0001 ServerError: 503 busy"
    assert row(view, "summarizer") == "summarizer waiting"

    # The retry starts afresh, succeeds, and the agent finishes.
    success = Attempt(2, "succeeded", 1003.0, 1.0, usage=Usage(100, 40), cost=0.0011)
    critic = succeeded_result(
        "critic",
        output="final critique",
        usage=Usage(110, 43),
        cost=0.0012,
        started_at=1002.0,
        finished_at=1004.5,
        attempts=2,
    )
    feed(
        reporter,
        [AttemptStarted("critic", 2), AttemptSucceeded("critic", success), finished(critic)],
    )
    clock.now = 1010.0
    view = render(reporter)
    assert view.splitlines()[0].split()[1:] == [
        "1/3",
        "done",
        "10.0s",
        "$0.0012",
        "of",
        "$1.00",
        "cap",
    ]
    assert row(view, "critic") == "critic succeeded 2.5s 110+43 $0.0012 final critique"


def test_failed_and_skipped_rows_show_the_reason_and_spend_without_a_cap_says_so() -> None:
    workflow = demo_workflow()
    workflow = workflow.model_copy(
        update={"policies": workflow.policies.model_copy(update={"cost_cap": None})}
    )
    reporter = LiveReporter(text_console(terminal=True, width=100), clock=FixedClock(1010.0))
    failed = AgentResult(
        "researcher",
        AgentStatus.FAILED,
        "gpt-4o",
        "openai",
        error="ServerError: 500\nboom",
        cost=None,
        attempts=[Attempt(1, "failed", 1000.0, 1.0, cost=None)],
        started_at=1000.0,
        finished_at=1001.0,
    )
    skipped = AgentResult(
        "summarizer", AgentStatus.SKIPPED, "gpt-4o", "openai", error="researcher failed"
    )
    feed(reporter, [started(workflow), finished(failed), finished(skipped)])
    view = render(reporter)
    assert view.splitlines()[0].split()[1:] == [
        "2/3",
        "done",
        "10.0s",
        "$0.0000",
        "+",
        "unknown",
        "(no",
        "cap)",
    ]
    assert row(view, "researcher") == "researcher failed 1.0s ? ServerError: 500 boom"
    assert row(view, "summarizer") == "summarizer skipped $0.0000 researcher failed"


def test_cost_cap_from_the_engine_and_earlier_spend_count_against_the_cap() -> None:
    reporter = LiveReporter(text_console(terminal=True, width=100), clock=FixedClock(1001.0))
    previous = succeeded_result("researcher", output="kept from run 4", cost=0.5)
    previous.reused = True
    feed(
        reporter,
        [
            started(
                demo_workflow(), reused={"researcher": previous}, cost_cap=2.0, spent_before=0.25
            )
        ],
    )
    view = render(reporter)
    assert view.splitlines()[0].split()[1:] == [
        "1/3",
        "done",
        "1.0s",
        "$0.0000",
        "(+",
        "$0.2500",
        "by",
        "earlier",
        "runs)",
        "of",
        "$2.00",
        "cap",
    ]
    assert (
        row(view, "researcher")
        == "researcher succeeded (reused) 2.3s 120+45 $0.5000 kept from run 4"
    )


def test_hundreds_of_agents_are_summarised_within_the_terminal_height() -> None:
    reporter = LiveReporter(text_console(terminal=True, width=100), clock=FixedClock(1100.0))
    events: list[Event] = [started(many_agents_workflow(300, cost_cap=5.0))]
    for i in range(100):
        name = f"agent{i:03d}"
        events.append(
            finished(
                succeeded_result(
                    name, output=f"answer {i}", started_at=1000.0 + i, finished_at=1001.0 + i
                )
            )
        )
    events.append(
        finished(
            AgentResult(
                "agent150",
                AgentStatus.FAILED,
                "gpt-4o",
                "openai",
                error="ServerError: 500",
                attempts=[Attempt(1, "failed", 1000.0, 1.0)],
            )
        )
    )
    for i in range(200, 205):
        events.append(AgentStarted(f"agent{i:03d}", "gpt-4o", "openai", "p", 1090.0))
    feed(reporter, events)

    view = render(reporter, height=30)
    lines = view.rstrip("\n").splitlines()
    assert len(lines) <= 30
    assert lines[0].split()[1:3] == ["101/300", "done"]
    assert lines[1].split() == ["5", "running", "1", "failed", "100", "succeeded", "194", "waiting"]
    # 24 rows fit: the 5 running, the failed one, and the 18 most recently finished.
    assert lines[-1].strip() == "… and 276 more (82 succeeded, 194 waiting)"
    for i in range(200, 205):
        assert row(view, f"agent{i:03d}").startswith(f"agent{i:03d} running")
    assert row(view, "agent150").startswith("agent150 failed")
    assert row(view, "agent099").startswith("agent099 succeeded")
    assert row(view, "agent082").startswith("agent082 succeeded")
    assert "agent081 " not in view and "agent205 " not in view

    tall = render(reporter, height=400)
    assert "more (" not in tall and len(tall.splitlines()) == 300 + 4


def test_model_text_is_never_markup_nor_escape_sequences_in_the_view_and_summary() -> None:
    console = text_console(terminal=True, width=100)
    reporter = LiveReporter(console, clock=FixedClock(1001.0))
    hostile = "[bold red]x[/] \x1b[2J\x1b]8;;http://e\x07y\x1b]8;;\x07"
    feed(
        reporter,
        [
            started(demo_workflow()),
            AgentStarted("summarizer", "gpt-4o", "openai", "p", 1000.0),
            TokensStreamed("summarizer", hostile),
        ],
    )
    view = render(reporter)
    assert row(view, "summarizer").endswith("[bold red]x[/] y")
    assert "\x1b[2J" not in view and "http://e" not in view

    agents = [
        succeeded_result("researcher"),
        succeeded_result("critic"),
        succeeded_result("summarizer", output=hostile),
    ]
    with reporter:
        reporter(CostWarning("no known price for model '[red]m[/]'"))
        reporter(WorkflowFinished(workflow_result(agents)))
    assert reporter.live is None  # the display stopped before the summary was printed
    printed = output_of(console)
    assert "[bold red]x[/] y" in printed
    assert "warning: no known price for model '[red]m[/]'" in printed
    assert "\x1b[2J" not in printed and "\x1b]8" not in printed and "\x07" not in printed


def test_the_summary_is_printed_once_after_the_display_stops() -> None:
    console = text_console(terminal=True, width=100)
    reporter = make_reporter(console)
    agents = [
        succeeded_result("researcher"),
        succeeded_result("critic"),
        succeeded_result("summarizer", output="The final answer."),
    ]
    with reporter:
        reporter(started(demo_workflow()))
        reporter(WorkflowFinished(workflow_result(agents)))
    printed = output_of(console)
    assert printed.count("The final answer.") == 1
    assert printed.count("summarizer output") == 1
    assert (
        "workflow demo succeeded in 5.0s: 3/3 agents succeeded, 360+135 tokens, $0.0036 of $1.00 cap"
        in printed
    )
