"""Approvals in the web view: the page lists what waits (the prompt or the answer, escaped),
its forms POST a decision that the history records, and nothing else can: no form token of
this server's session, another Origin, no Origin at all, a token of an earlier server. In
headless Chromium, a forged cross-site form fails and a real click decides."""

from __future__ import annotations

import http.server
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import agentops
from agentops.runtime.events import RunStatus
from agentops.testing.server import OpenAITestServer
from tests.support.engine import TEST_KEY, TEST_KEY_ENV, workflow_on
from tests.support.store import rows
from tests.support.web import needs_browser, ui_server, wait_for

DB = TypeVar("DB", str, Path)
HOSTILE = '<img src="x" onerror="window.__pwned = 1">'


@pytest.fixture
def waiting_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recorded run whose ``notes`` answer waits for review (approval: after)."""
    return record_waiting(tmp_path / "history.db", monkeypatch)


@pytest.fixture(params=["sqlite", "postgresql"])
def waiting_history(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str | Path:
    """``waiting_run`` in a SQLite file, then in a PostgreSQL database."""
    if request.param == "postgresql":
        return record_waiting(str(request.getfixturevalue("postgres_url")), monkeypatch)
    return record_waiting(tmp_path / "history.db", monkeypatch)


def record_waiting(db: DB, monkeypatch: pytest.MonkeyPatch) -> DB:
    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    with OpenAITestServer(latency=0.01) as server:
        server.answer_when("Write notes", f"Release notes {HOSTILE}")
        agents = [
            {"name": "notes", "approval": "after", "task": "Write notes."},
            {"name": "publish", "depends_on": "notes", "task": "Publish {{ notes.output }}"},
        ]
        result = agentops.run(workflow_on(server, agents), db=db, otel=False)
    assert result.status is RunStatus.WAITING and result.workflow_run_id == 1
    return db


def approval_row(db: str | Path) -> tuple[Any, ...]:
    (row,) = rows(db, "SELECT status, decided_by, text FROM approvals")
    return tuple(row)


def get(url: str) -> tuple[int, str, str]:
    """Status, the Set-Cookie session, and the page."""
    with urllib.request.urlopen(url, timeout=10) as response:
        cookie = response.headers.get("set-cookie", "")
        return response.status, cookie.split(";")[0], response.read().decode()


def post(url: str, fields: dict[str, str], headers: dict[str, str]) -> int:
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def token_of(page: str) -> str:
    return page.split('name="token" value="', 1)[1].split('"', 1)[0]


def test_a_decision_needs_the_session_token_and_this_servers_origin(
    waiting_history: str | Path,
) -> None:
    with ui_server(waiting_history) as url:
        status, cookie, page = get(f"{url}/approvals")
        assert status == 200 and cookie.startswith("agentops_session=")
        assert "HttpOnly" in urllib.request.urlopen(f"{url}/approvals").headers["set-cookie"]
        assert "SameSite=strict" in urllib.request.urlopen(f"{url}/approvals").headers["set-cookie"]
        # The answer is shown as text, never as markup.
        assert "Release notes &lt;img src=&#34;x&#34;" in page and HOSTILE not in page
        token = token_of(page)
        target = f"{url}/runs/1/approvals/notes"
        same = {"origin": url, "cookie": cookie}
        approve = {"verdict": "approve", "token": token}
        assert post(target, {"verdict": "approve"}, same) == 403  # no token
        assert post(target, {**approve, "token": "0" * 64}, same) == 403  # a forged token
        assert post(target, approve, {"origin": url}) == 403  # no session cookie
        other = {"cookie": "agentops_session=" + "A" * 43, "origin": url}
        assert post(target, approve, other) == 403  # a token of another session
        assert post(target, approve, {**same, "origin": "http://evil.example"}) == 403
        assert post(target, approve, {"cookie": cookie}) == 403  # neither Origin nor Referer
        assert post(target, approve, {**same, "host": "evil.example"}) == 400  # DNS rebinding
        assert approval_row(waiting_history) == ("pending", None, None)
        # A reject needs its reason; then the real form's post is recorded, once.
        assert post(target, {"verdict": "reject", "token": token}, same) == 400
        assert post(target, {**approve, "text": "fine"}, same) == 303
        assert approval_row(waiting_history)[0] == "approved"
        assert approval_row(waiting_history)[1].endswith(" (web view)")
        assert post(target, approve, same) == 409  # already decided
    # A token of an earlier server does not pass this one.
    with ui_server(waiting_history) as url:
        assert (
            post(f"{url}/runs/1/approvals/notes", approve, {"origin": url, "cookie": cookie}) == 403
        )


class _Forgery(http.server.BaseHTTPRequestHandler):
    """Another site: a page whose form posts to the web view."""

    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def forgery() -> Iterator[tuple[str, type[_Forgery]]]:
    handler = type("Forgery", (_Forgery,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@needs_browser()
def test_chromium_decides_from_the_page_and_a_forged_cross_site_post_fails(
    waiting_run: Path, browser: Any, forgery: tuple[str, type[_Forgery]]
) -> None:
    from selenium.webdriver.common.by import By

    forged_url, handler = forgery
    with ui_server(waiting_run) as url:
        browser.get(f"{url}/")
        badge = browser.find_element(By.CSS_SELECTOR, "tr[data-run='1'] [data-approval-badge]")
        assert badge.text == "approval"
        badge.click()
        wait_for(browser, "document.querySelector('[data-approval=\"1/notes\"]')")
        assert browser.execute_script("return window.__pwned") is None
        answer = browser.find_element(By.CSS_SELECTOR, "[data-answer]").text
        assert answer.startswith("Release notes <img")  # the markup shown as text
        # Another site's form, even one carrying this page's token, is refused: its Origin.
        token = browser.find_element(By.NAME, "token").get_attribute("value")
        handler.page = (
            f'<form method="post" action="{url}/runs/1/approvals/notes">'
            f'<input name="token" value="{token}"><input name="verdict" value="approve">'
            '<button id="go">win a prize</button></form>'
        ).encode()
        browser.get(forged_url)
        browser.find_element(By.ID, "go").click()
        wait_for(browser, "document.title.indexOf('AgentOps') >= 0")
        assert "cross-site request refused" in browser.page_source
        assert approval_row(waiting_run) == ("pending", None, None)
        # The page itself: feedback typed, Send back clicked, recorded and shown.
        browser.get(f"{url}/approvals")
        browser.find_element(By.NAME, "text").send_keys("Shorter, please.")
        browser.find_element(By.CSS_SELECTOR, "[data-verdict='revise']").click()
        notice = wait_for(browser, "document.querySelector('[data-notice]')")
        assert notice is not None
        assert (
            "notes in workflow run 1: revise"
            in browser.find_element(By.CSS_SELECTOR, "[data-notice]").text
        )
        assert browser.find_elements(By.CSS_SELECTOR, "[data-empty]")
        status, by, text = approval_row(waiting_run)
        assert (status, text) == ("revise", "Shorter, please.") and by.endswith(" (web view)")


def test_a_loops_member_is_one_node_and_its_page_lists_its_iterations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentops.store import open_store
    from agentops.store.sqlite_reader import SqliteHistoryReader
    from agentops.web.state import run_state
    from tests.support.loops import APPROVE, REJECT, refine_agents, refine_loop
    from tests.support.web import fetch

    monkeypatch.setenv(TEST_KEY_ENV, TEST_KEY)
    db = tmp_path / "history.db"
    with OpenAITestServer(latency=0.01) as server:
        server.answer_in_turn("Review this draft", [REJECT, APPROVE])
        flow = workflow_on(server, refine_agents(), loops=refine_loop())
        assert agentops.run(flow, db=db, otel=False).status is RunStatus.SUCCEEDED
    with open_store(db, create=False) as store:
        reader = SqliteHistoryReader(store)
        state = run_state(reader, reader.workflow_run_header(1))
    assert sorted(state.agents) == ["critic", "draft", "publish"]  # no node per iteration
    draft = state.agents["draft"]
    assert draft.status == "succeeded"
    assert [i.name for i in draft.iterations] == ["draft#1", "draft#2"]
    with ui_server(db) as url:
        status, _, page = fetch(f"{url}/runs/1/agents/draft")
        assert status == 200
        assert "data-loop-end>until held at iteration 2<" in page
        assert 'href="/runs/1/agents/draft%231">draft#1</a>' in page
        status, _, page = fetch(f"{url}/runs/1/agents/draft%232")
        assert status == 200 and "refine, iteration 2" in page
        assert f"[{REJECT['feedback']}]" in page  # its prompt read the critic's first answer
        status, _, page = fetch(f"{url}/runs/1")
        assert status == 200 and "draft#" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]
