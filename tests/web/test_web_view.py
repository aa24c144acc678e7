"""The web view end to end: a real ``agentops ui`` process over a history recorded by
real ``agentops run`` processes (against the local OpenAI-compatible test server),
read in real headless Chromium. The run list, the graph's statuses against the
database, an agent page, hostile model output staying inert, a live run updating in
place, grouping past a threshold, and the command's own safety checks."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentops.runtime.events import RunStatus
from agentops.store import open_store
from agentops.testing.server import OpenAITestServer
from agentops.workflow.spec import Agent, Workflow
from tests.support.reliability import (
    agent_of,
    cli_env,
    rows,
    run_agentops,
    start_agentops,
    wait_until,
    write_workflow,
)
from tests.support.store import failed, record, succeeded
from tests.support.web import fetch, needs_browser, screenshot, ui_server, wait_for

HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2; alert(1)">'
PRICES = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}


def reply_for(body: dict[str, Any]) -> str:
    agent = agent_of(body)
    if agent == "writer":
        return f"Final brief. {HOSTILE}"
    if agent == "fact_checker":
        return '{"claims": 3, "verified": ["tides", "moon"], "note": "<b>bold?</b>"}'
    return f"findings of {agent}"


def brief_agents() -> list[dict[str, Any]]:
    return [
        {"name": "web"},
        {"name": "archive"},
        {"name": "critic", "depends_on": "web"},
        {"name": "fact_checker", "depends_on": {"any": ["web", "archive"]}},
        {"name": "after_critic", "depends_on": "critic"},
        {"name": "writer", "depends_on": "fact_checker && (web || archive)"},
    ]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real runs of "brief" (critic answers HTTP 400, so after_critic is skipped; the
    second resumes the first), then older synthetic runs of other workflows for the list."""
    directory = tmp_path_factory.mktemp("web")
    db = directory / "agentops.db"
    with open_store(db) as store:
        for n in range(7):
            agents = [succeeded("a", "ok")] if n % 3 else [failed("a", "BadRequestError: no")]
            status = RunStatus.SUCCEEDED if n % 3 else RunStatus.FAILED
            record(
                store,
                Workflow(
                    name=f"nightly_{n % 2}", agents=[Agent(name="a", model="gpt-4o-mini", task="t")]
                ),
                agents,
                status,
            )
    with OpenAITestServer(latency=0.02) as server:
        server.reply = reply_for
        server.inject_for(
            lambda body: agent_of(body) == "critic",
            kind="status",
            status=400,
            message="critic refused",
        )
        flow = write_workflow(
            directory / "brief.yaml",
            server.base_url,
            brief_agents(),
            name="brief",
            prices=PRICES,
            policies={"cost_cap": 0.05, "retries": 1},
        )
        first = run_agentops("run", flow, "--db", db)
        assert first.returncode == 1, first.stderr
        second = run_agentops("resume", "8", "--db", db)
        assert second.returncode == 1, second.stderr
    return db


@pytest.fixture(scope="module")
def server_url(history: Path) -> Iterator[str]:
    with ui_server(history) as url:
        yield url


def test_pages_escape_everything_and_send_a_strict_policy(server_url: str) -> None:
    status, headers, html = fetch(f"{server_url}/runs/8/agents/writer")
    assert status == 200
    policy = headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy
        and "default-src 'none'" in policy
    )
    assert headers["x-content-type-options"] == "nosniff"
    assert (
        "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html and "<script>window" not in html
    )
    assert "onerror=" not in html.replace("onerror=&#34;", "").replace("onerror=&quot;", "")
    assert html.count("<script") == 1 and '<script src="/static/live.js" defer></script>' in html
    assert 'style="' not in html and " on" not in html.split("<body>")[1].split(">")[0]
    assert fetch(f"{server_url}/runs/999")[0] == 404
    assert fetch(f"{server_url}/runs/8/agents/nobody")[0] == 404
    # DNS rebinding: a request naming another host is refused.
    assert fetch(f"{server_url}/", headers={"Host": "attacker.example"})[0] == 400


@needs_browser()
def test_the_run_list_is_newest_first_filterable_and_paged(
    browser: Any, server_url: str, history: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(f"{server_url}/")
    listed = [
        int(row.get_attribute("data-run"))
        for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")
    ]
    assert listed == [
        r["id"] for r in rows(history, "SELECT id FROM workflow_runs ORDER BY id DESC")
    ]
    statuses = {
        int(r.get_attribute("data-run")): r.get_attribute("data-status")
        for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")
    }
    assert statuses == {
        r["id"]: r["status"] for r in rows(history, "SELECT id, status FROM workflow_runs")
    }
    screenshot(browser, "ui-runs", tmp_path)

    Select(browser.find_element(By.NAME, "workflow")).select_by_visible_text("nightly_0")
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("failed")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, "location.search.includes('status=failed')")
    shown = [
        int(r.get_attribute("data-run"))
        for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")
    ]
    expected = rows(
        history,
        "SELECT id FROM workflow_runs WHERE workflow = 'nightly_0' AND status = 'failed' "
        "ORDER BY id DESC",
    )
    assert shown == [r["id"] for r in expected] and shown

    browser.get(f"{server_url}/?limit=4")
    pages: list[int] = []
    while True:
        pages += [
            int(r.get_attribute("data-run"))
            for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")
        ]
        older = browser.find_elements(By.CSS_SELECTOR, "a[data-older]")
        if not older:
            break
        assert "before=" in older[0].get_attribute("href") and "offset" not in older[
            0
        ].get_attribute("href")
        older[0].click()
    assert pages == listed
    browser.find_element(By.CSS_SELECTOR, "a[data-newer]").click()
    assert [
        int(r.get_attribute("data-run"))
        for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-run]")
    ] == listed[4:8]


@needs_browser()
def test_the_graph_shows_every_agents_status_from_the_database(
    browser: Any, server_url: str, history: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    for run_id in (8, 9):
        browser.get(f"{server_url}/runs/{run_id}")
        nodes = {
            n.get_attribute("data-agent"): n.get_attribute("data-status")
            for n in browser.find_elements(By.CSS_SELECTOR, "svg [data-agent]")
        }
        recorded = {
            r["agent"]: r["status"]
            for r in rows(
                history, "SELECT agent, status FROM runs WHERE workflow_run_id = ?", run_id
            )
        }
        assert nodes == recorded
        assert (
            nodes["critic"] == "failed"
            and nodes["after_critic"] == "skipped"
            and nodes["writer"] == "succeeded"
        )
        kinds = {
            (e.get_attribute("data-from"), e.get_attribute("data-to")): e.get_attribute("data-kind")
            for e in browser.find_elements(By.CSS_SELECTOR, "svg path.edge")
        }
        assert kinds == {
            ("web", "critic"): "and",
            ("web", "fact_checker"): "or",
            ("archive", "fact_checker"): "or",
            ("critic", "after_critic"): "and",
            ("web", "writer"): "or",
            ("archive", "writer"): "or",
            ("fact_checker", "writer"): "and",
        }
        assert browser.find_elements(
            By.CSS_SELECTOR, "svg text.or-label"
        )  # alternatives are labelled
        assert (
            browser.find_element(By.CSS_SELECTOR, "[data-run-status]").get_attribute(
                "data-run-status"
            )
            == "failed"
        )
    # the resumed run: its chain, its reused agents, its spend against the cap
    chain = browser.find_element(By.CSS_SELECTOR, "[data-chain]").text
    assert "8" in chain and "9" in chain
    assert "$0.05" in browser.find_element(By.CSS_SELECTOR, '[data-field="cap"]').text
    assert browser.find_element(By.CSS_SELECTOR, "meter").get_attribute("max") == "0.05"
    assert "(reused)" in browser.find_element(By.CSS_SELECTOR, '[data-agent-row="web"]').text
    path = browser.find_element(By.CSS_SELECTOR, '[data-field="critical_path"]').text
    assert path.endswith("writer") or path.endswith("after_critic") or path.endswith("critic")
    browser.get(f"{server_url}/runs/8")
    screenshot(browser, "ui-run", tmp_path)
    browser.find_element(By.CSS_SELECTOR, 'svg [data-agent="fact_checker"]').click()
    wait_for(browser, "location.pathname === '/runs/8/agents/fact_checker'")


@needs_browser()
def test_an_agent_page_shows_its_prompt_output_and_attempts(
    browser: Any, server_url: str, history: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    recorded = rows(
        history,
        "SELECT id, prompt, output FROM runs WHERE workflow_run_id = 8 AND agent = 'fact_checker'",
    )[0]
    browser.get(f"{server_url}/runs/8/agents/fact_checker")
    output = browser.find_element(By.CSS_SELECTOR, "[data-output]")
    assert output.get_attribute("data-format") == "json"
    assert (
        json.loads(output.text) == json.loads(recorded["output"])
        and '\n  "claims": 3' in output.text
    )
    assert browser.find_element(By.CSS_SELECTOR, "[data-prompt]").text == recorded["prompt"].strip()
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-output] b")  # its "<b>" is text
    screenshot(browser, "ui-agent", tmp_path)

    browser.get(f"{server_url}/runs/8/agents/critic")
    attempts = browser.find_elements(By.CSS_SELECTOR, "tr[data-attempt]")
    stored = rows(
        history,
        "SELECT a.status, a.http_status FROM attempts a JOIN runs r ON r.id = a.run_id "
        "WHERE r.workflow_run_id = 8 AND r.agent = 'critic' ORDER BY a.number",
    )
    assert (
        [a.get_attribute("data-status") for a in attempts]
        == [r["status"] for r in stored]
        == ["failed"]
    )  # a 400 is not retried
    assert all("400" in a.text and "critic refused" in a.text for a in attempts)
    assert "critic refused" in browser.find_element(By.CSS_SELECTOR, "[data-error]").text
    assert not browser.find_elements(
        By.CSS_SELECTOR, "[data-tool-calls]"
    )  # no tool calls table yet: no section


@needs_browser()
def test_hostile_model_output_stays_inert(browser: Any, server_url: str) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    for page in ("/runs/8/agents/writer", "/runs/8"):
        browser.get(f"{server_url}{page}")
        time.sleep(0.3)  # time for an injected script or a failed image's handler to run
        assert browser.execute_script("return window.__pwned") is None
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018
    browser.get(f"{server_url}/runs/8/agents/writer")
    output = browser.find_element(By.CSS_SELECTOR, "[data-output]")
    assert HOSTILE in output.text
    assert not output.find_elements(By.CSS_SELECTOR, "script, img")
    assert [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")] == [
        f"{server_url}/static/live.js"
    ]


def latency_for(body: dict[str, Any]) -> float:
    return {"slow": 2.5, "quick": 0.3}.get(str(agent_of(body)).split("_")[0], 1.0)


@needs_browser()
def test_a_live_run_updates_in_place(browser: Any, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with open_store(db):
        pass  # an empty history: the view starts before the run
    with OpenAITestServer(latency=latency_for) as server, ui_server(db) as url:
        flow = write_workflow(
            tmp_path / "live.yaml",
            server.base_url,
            [
                {"name": "quick_a"},
                {"name": "slow_b"},
                {"name": "final", "depends_on": ["quick_a", "slow_b"]},
            ],
            name="live",
        )
        process = start_agentops("run", flow, "--db", db)
        try:
            wait_until(lambda: bool(rows(db, "SELECT 1 FROM agent_starts")), timeout=30)
            browser.get(f"{url}/runs/1")
            browser.execute_script("window.__samePage = 42")
            assert (
                browser.find_element("css selector", "[data-run-status]").get_attribute(
                    "data-run-status"
                )
                == "running"
            )
            wait_for(
                browser,
                """document.querySelector('[data-agent="slow_b"]').dataset.status === 'running'""",
            )
            wait_for(
                browser,
                """document.querySelector('[data-agent="quick_a"]').dataset.status === 'succeeded'""",
            )
            assert (
                browser.find_element("css selector", '[data-agent="final"]').get_attribute(
                    "data-status"
                )
                == "waiting"
            )
            wait_for(
                browser,
                """document.querySelector('[data-agent="final"]').dataset.status === 'running'""",
            )
            wait_for(
                browser,
                "document.querySelector('[data-run-status]').dataset.runStatus === 'succeeded'",
            )
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert (
            browser.execute_script("return window.__samePage") == 42
        )  # updated in place, never reloaded
        statuses = {
            e.get_attribute("data-agent"): e.get_attribute("data-status")
            for e in browser.find_elements("css selector", "svg [data-agent]")
        }
        assert statuses == {"quick_a": "succeeded", "slow_b": "succeeded", "final": "succeeded"}
        assert browser.find_element("css selector", '[data-field="settled"]').text == "3/3"
        assert rows(db, "SELECT count(*) FROM agent_starts")[0][0] == 0


@needs_browser()
def test_large_runs_group_by_layer_and_prefix_and_groups_expand(
    browser: Any, tmp_path: Path
) -> None:
    db = tmp_path / "wide.db"
    agents = [Agent(name="plan", model="gpt-4o-mini", task="t")]
    agents += [
        Agent(name=f"research_{n}", model="gpt-4o-mini", task="t", depends_on="plan")
        for n in range(30)
    ]
    agents += [
        Agent(name=f"check_{n}", model="gpt-4o-mini", task="t", depends_on=f"research_{n}")
        for n in range(30)
    ]
    agents += [
        Agent(
            name="write",
            model="gpt-4o-mini",
            task="t",
            depends_on=[f"check_{n}" for n in range(30)],
        )
    ]
    workflow = Workflow(name="wide", agents=agents)
    results = [succeeded(a.name, "ok") for a in agents[:-5]] + [
        failed(a.name, "no") for a in agents[-5:-1]
    ]
    with open_store(db) as store:
        record(store, workflow, results, None)  # still running: "write" waits
    with ui_server(db) as url:
        browser.get(f"{url}/runs/1")
        groups = {
            g.get_attribute("data-group"): (
                g.get_attribute("data-status"),
                g.get_attribute("data-members"),
            )
            for g in browser.find_elements("css selector", "svg [data-group]")
        }
        assert groups == {
            "group:1:research": ("succeeded", "30"),
            "group:2:check": ("failed", "30"),
        }
        assert {
            a.get_attribute("data-agent")
            for a in browser.find_elements("css selector", "svg [data-agent]")
        } == {"plan", "write"}
        browser.find_element("css selector", 'svg [data-group="group:2:check"]').click()
        wait_for(browser, "location.search.includes('expand=')")
        shown = {
            a.get_attribute("data-agent"): a.get_attribute("data-status")
            for a in browser.find_elements("css selector", "svg [data-agent]")
        }
        assert (
            len(shown) == 32 and shown["check_29"] == "failed" and shown["check_0"] == "succeeded"
        )
        assert shown["write"] == "waiting"


def test_the_command_binds_loopback_unless_told_otherwise(history: Path, tmp_path: Path) -> None:
    refused = run_agentops("ui", "--db", history, "--host", "0.0.0.0", "--port", "0")
    assert (
        refused.returncode == 2
        and "--allow-remote" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    missing = run_agentops("ui", "--db", tmp_path / "none.db", "--port", "0")
    assert missing.returncode == 2 and "no history database at" in missing.stderr
    assert not (tmp_path / "none.db").exists()
    process = subprocess.Popen(
        [*start_agentops_args(history), "--host", "0.0.0.0", "--allow-remote"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        line = process.stdout.readline()
        assert "http://0.0.0.0:" in line
        assert fetch(line.split()[-4].rstrip("/").replace("0.0.0.0", "127.0.0.1") + "/")[0] == 200
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert "warning: serving the run history on 0.0.0.0" in errors


def start_agentops_args(db: Path) -> list[str]:
    from tests.support.reliability import agentops_command

    return agentops_command("ui", "--db", db, "--port", "0")


def test_an_agent_page_lists_its_tool_calls_escaped(tmp_path: Path) -> None:
    import agentops
    from agentops.providers.fake import tool_call

    (tmp_path / "pagetools.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: tooled\ntools: {add: {python: 'pagetools:add'}}\n"
        "agents:\n  - {name: a, model: gpt-4o-mini, task: add, tools: [add]}\n"
    )
    db = tmp_path / "h.db"
    fake = agentops.FakeProvider(
        {"a": [tool_call("add", a=2, b=3), tool_call("add", a="<b>x</b>", b=1), "5"]}
    )
    assert agentops.run(flow, db=db, provider=fake).ok
    with ui_server(db) as url:
        status, _, page = fetch(f"{url}/runs/1/agents/a")
    assert status == 200
    assert page.count("data-tool-call=") == 2
    assert '<td class="num">1</td><td>add</td><td>succeeded</td>' in page
    assert (
        "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    )  # the model's arguments stay text
