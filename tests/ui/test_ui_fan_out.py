"""Fan-outs and routing on the terminal: a fan-out agent is one row (items by status, cost
summed) with a few items under way beneath it, plain lines are throttled for large
fan-outs, and an agent routed away reads apart from a skip and is no failure."""

from __future__ import annotations

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    Event,
    FanOutStarted,
    RunStatus,
    SkipCause,
    TokensStreamed,
    Usage,
    WorkflowFinished,
    instance_key,
    split_instance_key,
)
from agentops.ui.live import INSTANCE_ROWS, LiveReporter
from agentops.ui.plain import ITEM_LINES_UP_TO, PlainReporter
from tests.support.fan_out import (
    REASON,
    fan_out_result,
    flow,
    item,
    item_events,
    routed_away,
    run_result,
)
from tests.support.ui import (
    FixedClock,
    feed,
    output_of,
    render,
    row,
    started,
    succeeded_result,
    text_console,
)


def test_instance_names_split_back_into_agent_and_index() -> None:
    assert split_instance_key(instance_key("writer", 12)) == ("writer", 12)
    assert split_instance_key("writer") == ("writer", None)
    assert split_instance_key("writer[x]") == ("writer[x]", None)
    assert split_instance_key("[3]") == ("[3]", None)


def test_a_fan_out_is_one_row_with_items_by_status_and_a_few_under_way_beneath() -> None:
    reporter = LiveReporter(text_console(terminal=True, width=140), clock=FixedClock(1003.0))
    planner = succeeded_result("planner", output="feature", cost=0.002, finished_at=1000.5)
    feed(
        reporter,
        [
            started(flow()),
            AgentFinished(planner),
            AgentFinished(routed_away()),
            FanOutStarted("writer", 8, 1000.5),
            *item_events(item(0)),
            *item_events(item(1, AgentStatus.FAILED)),
        ],
    )
    # Five items under way (one streaming, one retrying), one waiting for a slot.
    for index in range(2, 7):
        name = instance_key("writer", index)
        feed(reporter, [AgentStarted(name, "gpt-4o", "openai", "p", 1001.0 + index / 10)])
        feed(reporter, [AttemptStarted(name, 1), TokensStreamed(name, f"draft {index}")])
    retry = Attempt(1, "failed", 1001.0, 0.1, usage=Usage(4, 0), cost=0.0005, error="503 busy")
    feed(reporter, [AttemptFailed("writer[3]", retry, will_retry=True, retry_in=1.0)])

    view = render(reporter, width=140)
    lines = view.splitlines()
    assert lines[0].split()[1:3] == ["2/4", "done"]  # workflow agents, never items
    assert lines[1].split() == [
        "1",
        "running",
        "1",
        "succeeded",
        "1",
        "routed",
        "away",
        "1",
        "waiting",
    ]
    writer = row(view, "writer")
    # Items by status; tokens and cost are the settled items' and the retried call's.
    assert writer.startswith(
        "writer 1/8 ✓ 4 running 1 retrying 1 failed 1 waiting 2.5s 24+10 $0.0025"
    )
    assert writer.endswith("writer[1]: ServerError: 500 boom")  # the first failure
    beneath = [" ".join(line.split()) for line in lines if line.strip().startswith("└")]
    assert len(beneath) == INSTANCE_ROWS
    assert beneath[0].startswith("└ writer[2] running 1.8s") and beneath[0].endswith("draft 2")
    assert beneath[1].startswith("└ writer[3] retrying (1)") and beneath[1].endswith("503 busy")
    assert beneath[2].startswith("└ writer[4] running")
    assert "writer[0]" not in view and "writer[5]" not in view  # settled, or past the cap
    routed = row(view, "fix_bug")
    assert routed.startswith("fix_bug routed away $0.0000 …") and routed.endswith(REASON[-40:])
    # Spend counts every call of every item.
    assert lines[0].split()[4] == "$0.0045"

    # The agent settles: its row reads its status and items; nothing is left beneath it.
    rest = [item(i) for i in range(2, 8)]
    for result in rest:
        feed(reporter, [AgentFinished(result)])
    feed(
        reporter, [AgentFinished(fan_out_result([item(0), item(1, AgentStatus.FAILED), *rest], 8))]
    )
    view = render(reporter, width=140)
    assert row(view, "writer").startswith("writer failed 7/8 ✓ 1 failed 3.5s 80+40 $0.0080")
    assert "└" not in view


def test_ten_thousand_items_stay_one_row_within_the_terminal() -> None:
    reporter = LiveReporter(text_console(terminal=True, width=120), clock=FixedClock(1100.0))
    feed(reporter, [started(flow()), AgentFinished(succeeded_result("planner"))])
    feed(reporter, [FanOutStarted("writer", 10_000, 1001.0)])
    for index in range(9_000):
        feed(
            reporter,
            [
                AgentFinished(
                    item(index, AgentStatus.FAILED if index % 1000 == 7 else AgentStatus.SUCCEEDED)
                )
            ],
        )
    for index in range(9_000, 9_064):  # the run's concurrency: 64 under way
        feed(
            reporter, [AgentStarted(instance_key("writer", index), "gpt-4o", "openai", "p", 1050.0)]
        )
    state = reporter.state
    assert list(state.rows) == ["planner", "writer", "fix_bug", "editor"]
    fan_out = state.rows["writer"].fan_out
    assert fan_out is not None and len(fan_out.active) == 64  # only items under way are rows

    view = render(reporter, width=120, height=12)
    lines = view.rstrip("\n").splitlines()
    assert len(lines) <= 12
    writer = row(view, "writer")
    assert writer.startswith("writer 8991/10000 ✓ 64 running 9 failed 936 waiting")
    assert "$9.0000" in writer  # 9,000 calls at $0.001
    assert sum(line.strip().startswith("└") for line in lines) <= INSTANCE_ROWS


def test_plain_lines_print_each_item_of_a_small_fan_out_and_the_routing() -> None:
    console = text_console(terminal=False)
    reporter = PlainReporter(console)
    instances = [item(0), item(1, AgentStatus.FAILED), item(2)]
    planner = succeeded_result("planner", output="feature")
    events: list[Event] = [started(flow()), AgentFinished(planner), AgentFinished(routed_away())]
    events.append(FanOutStarted("writer", 3, 1000.5))
    for result in instances:
        events.extend(item_events(result))
    events.append(AgentFinished(fan_out_result(instances, 3)))
    feed_plain(reporter, events)
    lines = output_of(console).splitlines()
    assert lines[:11] == [
        "workflow flow started: 4 agents, cost cap $1.00",
        "planner succeeded in 2.3s: 120+45 tokens, $0.0012",
        f"↷ fix_bug routed away: {REASON}",
        "writer fans out over 3 items",
        "writer[0] started (gpt-4o via openai)",
        "writer[0] succeeded in 1.0s: 10+5 tokens, $0.0010",
        "writer[1] started (gpt-4o via openai)",
        "writer[1] attempt 1 failed: ServerError: 500 boom",
        "writer[1] failed after 1 attempt in 1.0s: ServerError: 500 boom",
        "writer[2] started (gpt-4o via openai)",
        "writer[2] succeeded in 1.0s: 10+5 tokens, $0.0010",
    ]
    assert lines[11] == (
        "writer failed in 3.5s: 2/3 ✓ 1 failed, 30+15 tokens, $0.0030: 1 of 3 items failed"
    )


def test_plain_lines_of_a_large_fan_out_are_its_failures_and_a_line_each_tenth() -> None:
    console = text_console(terminal=False)
    reporter = PlainReporter(console)
    count = 1_000
    assert count > ITEM_LINES_UP_TO
    instances = [
        item(i, AgentStatus.FAILED if i in (5, 777) else AgentStatus.SUCCEEDED)
        for i in range(count)
    ]
    events: list[Event] = [started(flow()), FanOutStarted("writer", count, 1000.5)]
    for result in instances:
        events.extend(item_events(result))
    events.append(AgentFinished(fan_out_result(instances, count)))
    feed_plain(reporter, events)
    lines = output_of(console).splitlines()
    body = lines[
        : lines.index(next(line for line in lines if line.startswith("writer failed in"))) + 1
    ]
    assert body[:2] == [
        "workflow flow started: 4 agents, cost cap $1.00",
        "writer fans out over 1000 items",
    ]
    assert body[2] == "writer[5] failed after 1 attempt in 1.0s: ServerError: 500 boom"
    assert body[3] == "writer: 100/1000 items settled: 99 succeeded, 1 failed; $0.1000"
    progress = [line for line in body if line.startswith("writer: ")]
    assert len(progress) == 9  # 10 %, ..., 90 %; the agent's own line says the rest
    assert progress[-1] == "writer: 900/1000 items settled: 898 succeeded, 2 failed; $0.9000"
    assert "writer[777] failed after 1 attempt in 1.0s: ServerError: 500 boom" in body
    assert len(body) == 2 + 2 + 9 + 1
    assert body[-1].startswith("writer failed in 3.5s: 998/1000 ✓ 2 failed, 10000+5000 tokens")


def test_the_summary_counts_agents_and_names_routed_away_apart_from_problems() -> None:
    console = text_console(terminal=False, width=160)
    reporter = PlainReporter(console)
    instances = [item(i, AgentStatus.FAILED if i < 7 else AgentStatus.SUCCEEDED) for i in range(10)]
    writer = fan_out_result(instances, 12)  # two items never started (the cost cap)
    agents = [succeeded_result("planner"), writer, routed_away()]
    editor = AgentResult(
        "editor",
        AgentStatus.SKIPPED,
        "gpt-4o",
        "openai",
        error="writer failed",
        skip_cause=SkipCause.DEPENDENCY,
    )
    feed_plain(
        reporter,
        [started(flow()), WorkflowFinished(run_result([*agents, editor], RunStatus.FAILED))],
    )
    text = output_of(console)
    assert "| writer  | failed (3/12 ✓ 7 failed 2 not run) |       10 | 100+50 | $0.0100 |" in text
    assert "| fix_bug | routed away " in text
    assert "| total   | 1/4 ok, 1 routed " in text
    assert f"↷ fix_bug routed away: {REASON}" in text
    assert "writer failed: 7 of 12 items failed" in text
    assert "  writer[0] failed: ServerError: 500 boom" in text
    assert "  writer[4] failed: ServerError: 500 boom" in text and "writer[5] failed" not in text
    assert "  … and 2 more items of writer" in text
    assert "editor skipped: writer failed" in text and "fix_bug skipped" not in text
    assert text.splitlines()[-1].startswith(
        "workflow flow failed in 5.0s: 1/4 agents succeeded, 1 routed away, "
    )


def test_a_run_whose_only_non_successes_were_routed_away_reads_as_succeeded() -> None:
    console = text_console(terminal=False, width=160)
    reporter = PlainReporter(console)
    writer = fan_out_result([item(0), item(1)], 2)
    agents = [succeeded_result("planner"), writer, routed_away(), succeeded_result("editor")]
    feed_plain(
        reporter, [started(flow()), WorkflowFinished(run_result(agents, RunStatus.SUCCEEDED))]
    )
    text = output_of(console)
    assert "| writer  | succeeded (2/2 ✓)" in text
    assert "| total   | 3/4 ok, 1 routed " in text
    assert "failed" not in text and "skipped" not in text
    assert text.splitlines()[-1].startswith(
        "workflow flow succeeded in 5.0s: 3/4 agents succeeded, 1 routed away, "
    )


def test_items_a_resume_reuses_are_counted_not_listed() -> None:
    previous = [item(i) for i in range(3)]
    for result in previous:
        result.reused = True
    reused = {result.name: result for result in previous}
    reused["planner"] = succeeded_result("planner")
    console = text_console(terminal=False)
    plain = PlainReporter(console)
    live = LiveReporter(text_console(terminal=True, width=140), clock=FixedClock(1002.0))
    events: list[Event] = [
        started(flow(), reused=reused, resumed_from=3),
        FanOutStarted("writer", 5, 1001.0),
    ]
    events.extend(item_events(item(3)))
    feed_plain(plain, events)
    feed(live, events)
    assert output_of(console).splitlines()[:5] == [
        "workflow flow started (resuming workflow run 3): 4 agents, cost cap $1.00",
        "planner succeeded (reused)",
        "writer: 3 items succeeded (reused)",
        "writer fans out over 5 items",
        "writer[3] started (gpt-4o via openai)",
    ]
    # The reused items count as succeeded; their spend was an earlier run's.
    assert row(render(live, width=140), "writer").startswith(
        "writer 4/5 ✓ 1 waiting 1.0s 10+5 $0.0010"
    )


def feed_plain(reporter: PlainReporter, events: list[Event]) -> None:
    with reporter:
        feed(reporter, events)
