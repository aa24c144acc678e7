"""Fan-outs and routing in the web view: a fan-out is one node (``writer ×6``, its items by
status in a caption and a bar) whose items are listed, open, under the graph, each linking
to its own agent run page; an agent routed away is drawn apart from a skipped one, its
reason in the tooltip. Checked on the view's model read from the history of a real run (and
from the records of one under way), then in headless Chromium."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentops
from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    FanOutStarted,
    WorkflowResult,
    WorkflowStarted,
)
from agentops.store import open_store
from agentops.store.records import AgentOutcome, AgentStart, WorkflowRunRecord
from agentops.store.sqlite_reader import SqliteHistoryReader
from agentops.testing.server import OpenAITestServer
from agentops.web.layout import NODE_WIDTH, draw
from agentops.web.pages import BAR_INSET, figures_of, graph_view, items_view
from agentops.web.state import RunState, blueprint_of, combine, recorded_agents, run_state
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, EventLog, workflow_on
from tests.support.fan_out import ROUTED_FLOW, answer_the_flow
from tests.support.reliability import rows, start_agentops, wait_until, write_workflow
from tests.support.web import fetch, needs_browser, screenshot, ui_server, wait_for

FAILING_ITEM = 4
HOSTILE = ' <img src="x" onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'
REASON = "when triage.output.label == 'bug' was false (triage.output.label: 'feature')"


def real_run(db: Path | None = None) -> tuple[list[Any], WorkflowResult]:
    """``ROUTED_FLOW`` against the test server, recorded in ``db``: 6 items (item 4 refused
    with HTTP 400), triage answers "feature" (fix_bug is routed away). Its events and result."""
    log = EventLog()
    with pytest.MonkeyPatch.context() as patch, OpenAITestServer(latency=0.01) as server:
        patch.setenv(TEST_KEY_ENV, TEST_KEY)
        answer_the_flow(server, items=6, last=HOSTILE)  # the last item's title is markup
        server.inject_for(
            lambda body: f"section {FAILING_ITEM}'" in json.dumps(body),
            kind="status",
            status=400,
            message="refused <b>item</b>",
        )
        flow = workflow_on(server, ROUTED_FLOW)
        result = agentops.run(flow, subscribers=[log], db=db, otel=False)
    return log.events, result


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("fan_out") / "agentops.db"
    _, result = real_run(db)
    assert result.workflow_run_id == 1
    return db


def recorded_state(db: Path) -> RunState:
    """The view's model of run 1, read from the history as the web view reads it."""
    with open_store(db, create=False) as store:
        reader = SqliteHistoryReader(store)
        return run_state(reader, reader.workflow_run_header(1))


def outcome(result: AgentResult, row: int) -> AgentOutcome:
    """``result`` as the history's light record of it (a fan-out's own row costs nothing:
    its items do)."""
    fan_out = result.instances is not None
    return AgentOutcome(
        id=row,
        agent=result.agent_name,
        status=result.status.value,
        model=result.model,
        provider=result.provider,
        input_tokens=0 if fan_out else result.usage.input_tokens,
        output_tokens=0 if fan_out else result.usage.output_tokens,
        tokens_estimated=result.usage.estimated,
        cost=0.0 if fan_out else result.cost,
        attempt_count=len(result.attempts),
        started_at=None,
        finished_at=None,
        duration=result.duration,
        reused=result.reused,
        reused_from_run_id=None,
        error=result.error,
        item_index=result.item_index,
        item_count=result.item_count,
        skip_cause=result.skip_cause.value if result.skip_cause else None,
    )


def state_under_way(events: list[Any], upto: int) -> RunState:
    """The view's model from the records the first ``upto`` events leave in the history."""
    settled = [e.result for e in events[:upto] if isinstance(e, AgentFinished)]
    done = {result.name for result in settled}
    starts = [
        AgentStart(e.name, getattr(e, "model", None), getattr(e, "provider", None), None)
        for e in events[:upto]
        if isinstance(e, AgentStarted | FanOutStarted) and e.name not in done
    ]
    outcomes = [outcome(result, n) for n, result in enumerate(settled, start=1)]
    start = next(e for e in events if isinstance(e, WorkflowStarted))
    run = WorkflowRunRecord(
        id=1,
        workflow="test_flow",
        status="running",
        started_at=None,
        finished_at=None,
        duration=None,
        agents_total=5,
        agents_succeeded=0,
        input_tokens=0,
        output_tokens=0,
        tokens_estimated=False,
        cost=0.0,
        cost_cap=None,
        resumed_from=None,
        source_path=None,
        hostname=None,
        pid=None,
    )
    blueprint = blueprint_of(start.source, recorded_agents(outcomes, starts))
    return combine(run, blueprint, outcomes, starts)


def test_a_fan_out_is_one_node_with_its_items_counted_and_summed(history: Path) -> None:
    state = recorded_state(history)
    assert list(state.agents) == ["planner", "writer", "triage", "fix_bug", "plan_feature"]
    writer = state.agents["writer"]
    assert writer.status == "failed" and writer.fan_out is not None
    assert writer.fan_out.item_count == 6
    assert writer.fan_out.counts() == {"succeeded": 5, "failed": 1}
    assert [item.name for item in items_view(writer)] == [
        "writer[4]",  # what did not succeed comes first
        *(f"writer[{i}]" for i in (0, 1, 2, 3, 5)),
    ]
    # The agent's figures are its items' (its own row in the history holds none).
    items = rows(history, "SELECT * FROM runs WHERE agent = 'writer' AND item_index IS NOT NULL")
    figures = figures_of(writer)
    assert figures["attempts"] == 6
    assert figures["tokens"] == (
        f"{sum(r['input_tokens'] for r in items)}+{sum(r['output_tokens'] for r in items)}"
    )
    assert figures["items"] == {"succeeded": 5, "failed": 1}
    assert figures["label"] == "failed · 5/6 ✓ · 1 failed"

    graph = graph_view(state, draw(state.blueprint, frozenset()))
    box = next(view for view in graph.boxes if view.box.key == "writer")
    assert box.label == "writer ×6" and box.caption == "5/6 ✓ · 1 failed"
    assert box.href == "/runs/1?open=writer#items-writer"
    widths = {segment.status: segment.width for segment in box.segments}
    span = NODE_WIDTH - 2 * BAR_INSET
    assert widths["succeeded"] == round(span * 5 / 6, 1) and widths["failed"] == round(span / 6, 1)
    assert widths["running"] == widths["waiting"] == 0.0
    assert "items: 5 succeeded, 1 failed of 6" in box.title

    fix_bug = next(view for view in graph.boxes if view.box.key == "fix_bug")
    assert fix_bug.status == "routed" and fix_bug.caption == "routed away"
    assert "when: triage.output.label == 'bug'" in fix_bug.title
    assert f"routed away: {REASON}" in fix_bug.title
    assert state.settled == 5


def test_a_fan_out_under_way_counts_its_items_running_and_not_yet_known() -> None:
    events, _ = real_run()
    # Part way: the planner has settled and some items have started or settled.
    finished = [
        i
        for i, e in enumerate(events)
        if isinstance(e, AgentFinished) and e.result.agent == "writer"
    ]
    state = state_under_way(events, upto=finished[2] + 1)
    writer = state.agents["writer"]
    assert writer.status == "running" and writer.fan_out is not None
    counts = writer.fan_out.counts()
    assert counts["succeeded"] + counts.get("failed", 0) == 3 and counts.get("running", 0) >= 1
    box = next(
        v
        for v in graph_view(state, draw(state.blueprint, frozenset())).boxes
        if v.box.key == "writer"
    )
    # The item count is on the agent's own row, written when it settles: until then, "at least".
    assert box.label == f"writer ×{writer.fan_out.total}+"
    assert box.status == "running"


@pytest.fixture(scope="module")
def server_url(history: Path) -> Iterator[str]:
    with ui_server(history) as url:
        yield url


def item_rows(db: Path) -> dict[int, str]:
    """The items' rows in the history: status by index."""
    found = rows(db, "SELECT * FROM runs WHERE workflow_run_id = 1 AND item_index IS NOT NULL")
    return {int(row["item_index"]): row["status"] for row in found}


@needs_browser()
def test_the_fan_out_node_opens_its_items_and_each_links_to_its_page(
    browser: Any, server_url: str, history: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    recorded = item_rows(history)
    assert len(recorded) == 6 and recorded[FAILING_ITEM] == "failed"
    browser.get(f"{server_url}/runs/1")
    node = browser.find_element(By.CSS_SELECTOR, 'svg [data-fan-out="writer"]')
    assert node.get_attribute("data-status") == "failed"
    assert node.find_element(By.CSS_SELECTOR, "text.name").text == "writer ×6"
    assert node.find_element(By.CSS_SELECTOR, "text.caption").text == "5/6 ✓ · 1 failed"
    widths = {
        s.get_attribute("data-segment"): float(s.get_attribute("width"))
        for s in node.find_elements(By.CSS_SELECTOR, "rect[data-segment]")
    }
    share = sum(status == "succeeded" for status in recorded.values()) / len(recorded)
    span = NODE_WIDTH - 2 * BAR_INSET
    assert widths["succeeded"] == pytest.approx(span * share, abs=0.1)
    assert widths["failed"] == pytest.approx(span * (1 - share), abs=0.1)
    assert widths["running"] == widths["waiting"] == 0
    # The node's colours come from the stylesheet (the policy allows no inline style).
    fill = browser.execute_script(
        "return getComputedStyle(arguments[0]).fill",
        node.find_element(By.CSS_SELECTOR, 'rect[data-segment="failed"]'),
    )
    assert fill == "rgb(198, 40, 40)"
    # Only workflow agents are nodes and rows; the items are listed, closed, under the graph.
    assert {
        n.get_attribute("data-agent")
        for n in browser.find_elements(By.CSS_SELECTOR, "svg [data-agent]")
    } == {"planner", "writer", "triage", "fix_bug", "plan_feature"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr[data-agent-row]")) == 5
    details = browser.find_element(By.CSS_SELECTOR, "details#items-writer")
    assert details.get_attribute("open") is None

    node.click()
    wait_for(browser, "location.search === '?open=writer' && location.hash === '#items-writer'")
    details = browser.find_element(By.CSS_SELECTOR, "details#items-writer")
    assert details.get_attribute("open") is not None
    listed = {
        int(r.get_attribute("data-item")): r.get_attribute("data-status")
        for r in details.find_elements(By.CSS_SELECTOR, "tr[data-item]")
    }
    assert listed == recorded
    first = details.find_element(By.CSS_SELECTOR, "tr[data-item]")
    assert first.get_attribute("data-item") == str(FAILING_ITEM)  # failures first
    browser.execute_script("document.querySelector('.graph').scrollIntoView()")
    screenshot(browser, "ui-fan-out", tmp_path)

    first.find_element(By.CSS_SELECTOR, "a").click()
    wait_for(browser, f"location.pathname === '/runs/1/agents/writer%5B{FAILING_ITEM}%5D'")
    assert browser.find_element(By.CSS_SELECTOR, "h1").text.startswith(f"writer[{FAILING_ITEM}]")
    item_of = browser.find_element(By.CSS_SELECTOR, "[data-item-of]")
    assert item_of.text.startswith(f"{FAILING_ITEM} of writer")
    error = browser.find_element(By.CSS_SELECTOR, "[data-error]").text
    assert "refused <b>item</b>" in error  # the server's words, as text
    item_of.find_element(By.CSS_SELECTOR, "a").click()
    wait_for(browser, "location.search === '?open=writer'")
    assert browser.find_element(By.CSS_SELECTOR, "details#items-writer").get_attribute("open")


@needs_browser()
def test_an_item_made_of_markup_stays_text(browser: Any, server_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server_url}/runs/1/agents/writer%5B5%5D")
    time.sleep(0.3)  # time for an injected script or a failed image's handler to run
    assert browser.execute_script("return window.__pwned") is None
    prompt = browser.find_element(By.CSS_SELECTOR, "[data-prompt]")
    assert HOSTILE.strip() in prompt.text and not prompt.find_elements(
        By.CSS_SELECTOR, "img, script"
    )
    item = browser.find_element(By.CSS_SELECTOR, "[data-item-value]")  # as JSON text
    assert json.loads(item.text) == {"title": f"section 5{HOSTILE}"}
    assert not item.find_elements(By.CSS_SELECTOR, "img, script")


def test_the_fan_out_agent_page_lists_its_items_and_the_items_fragment_is_escaped(
    server_url: str,
) -> None:
    status, headers, page = fetch(f"{server_url}/runs/1/agents/writer")
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    assert "<dt>for each</dt><dd><code>planner.output.sections</code></dd>" in page
    assert page.count("<tr data-item=") == 6
    status, _, fragment = fetch(f"{server_url}/runs/1/items/writer")
    assert status == 200 and fragment.count("<tr data-item=") == 6
    assert '<a href="/runs/1/agents/writer%5B4%5D">writer[4]</a>' in fragment
    assert fetch(f"{server_url}/runs/1/items/planner")[0] == 404  # not a fan-out
    assert fetch(f"{server_url}/runs/1/items/nobody")[0] == 404


@needs_browser()
def test_an_agent_routed_away_is_drawn_apart_with_its_reason(browser: Any, server_url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server_url}/runs/1")
    node = browser.find_element(By.CSS_SELECTOR, 'svg [data-agent="fix_bug"]')
    assert node.get_attribute("data-status") == "routed"
    assert node.find_element(By.CSS_SELECTOR, "text.caption").text == "routed away"
    assert REASON in node.find_element(By.CSS_SELECTOR, "title").get_attribute("textContent")
    dash = browser.execute_script(
        "return getComputedStyle(arguments[0]).strokeDasharray",
        node.find_element(By.CSS_SELECTOR, "rect.box"),
    )
    assert dash not in ("", "none")
    browser.get(f"{server_url}/runs/1/agents/fix_bug")
    assert browser.find_element(By.CSS_SELECTOR, "[data-field=agent-status]").text == "routed away"
    assert browser.find_element(By.CSS_SELECTOR, "[data-decision]").text == "was false"
    values = browser.find_element(By.CSS_SELECTOR, "[data-decision-values]").text
    assert "triage.output.label" in values and '"feature"' in values


def item_latency(body: dict[str, Any]) -> float:
    """Items take their time, so the page sees the fan-out under way."""
    return 0.8 if "Write 'section" in json.dumps(body) else 0.05


@needs_browser()
def test_a_fan_out_under_way_updates_in_place(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with open_store(db):
        pass  # an empty history: the view starts before the run
    with OpenAITestServer(latency=item_latency) as server, ui_server(db) as url:
        answer_the_flow(server, items=6)
        flow = write_workflow(
            tmp_path / "live.yaml",
            server.base_url,
            [dict(agent, task=agent.get("task", f"do {agent['name']}")) for agent in ROUTED_FLOW],
            name="live",
            policies={"max_concurrency": 2},
        )
        process = start_agentops("run", flow, "--db", db)
        try:
            wait_until(
                lambda: bool(rows(db, "SELECT 1 FROM agent_starts WHERE agent LIKE 'writer%'")),
                timeout=30,
            )
            browser.get(f"{url}/runs/1?open=writer")
            browser.execute_script("window.__samePage = 42")
            bar = 'document.querySelector(\'[data-fan-out="writer"] rect[data-segment="{}"]\')'
            wait_for(browser, bar.format("running") + ".getAttribute('width') > 0")
            wait_for(browser, bar.format("succeeded") + ".getAttribute('width') > 0")
            wait_for(
                browser,
                "document.querySelector('[data-run-status]').dataset.runStatus !== 'running'",
            )
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert browser.execute_script("return window.__samePage") == 42  # never reloaded
        node = browser.find_element("css selector", '[data-fan-out="writer"]')
        assert node.get_attribute("data-status") == "succeeded"
        assert node.find_element("css selector", "text.name").text == "writer ×6"
        assert node.find_element("css selector", "text.caption").text == "6/6 ✓"
        wait_for(browser, "document.querySelectorAll('#items-writer tr[data-item]').length === 6")
        assert (
            browser.find_element(
                "css selector", '[data-agent-row="writer"] [data-cell="status"]'
            ).text
            == "succeeded · 6/6 ✓"
        )
