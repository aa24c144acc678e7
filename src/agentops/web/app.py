"""The web view's ASGI application: its pages, the live updates (server-sent events),
the static assets, and the headers that keep it safe.

Every page reads through a ``HistoryReader`` borrowed for the request (``stores.ReaderPool``:
a SQLite connection per worker thread, or one of a few pooled PostgreSQL connections) and renders a Jinja2 template with autoescaping on, so text from models,
tools and workflow files is always escaped. The Content-Security-Policy allows
scripts, styles and connections from this server only and no inline script or
style; nothing is loaded from another host.

A history that cannot be read (damaged, or migrated by a newer agentops since the view
started) answers 503 with a page saying why and what to do, and one line in the log.

Approvals are its only state-changing requests: a POST from the approvals page's forms,
accepted only with the form token of this server's session (an HMAC, under a key made when
the server starts, of the session cookie it set: SameSite=Strict, HttpOnly), an ``Origin``
(or ``Referer``) naming this very server, a trusted ``Host``, and a loopback client unless
the view was started with ``--allow-remote``. A page on another site can send none of these.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette.event import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentops.errors import RunNotFoundError, StoreError, UsageError
from agentops.store.reader import HistoryReader
from agentops.store.stores import ReaderPool
from agentops.web import pages
from agentops.web.layout import draw
from agentops.web.state import run_state

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
LIVE_POLL_SECONDS = 0.5  # how often a live page's stream reads the database
RUN_STATUSES = ("running", "succeeded", "failed", "interrupted", "waiting")
SESSION_COOKIE = "agentops_session"
_SESSION = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
MAX_FORM_BYTES = 64 * 1024
VERDICTS = {"approve": "approved", "reject": "rejected", "revise": "revise"}
_ERROR_TITLES = {400: "Bad request", 403: "Refused", 409: "Not recorded", 413: "Too large"}
# Records a decision: (workflow run, agent, verdict, text) -> the approval, or UsageError.
Decide = Callable[[int, str, str, str | None], Any]

T = TypeVar("T")


_HOST_HEADER = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\s:/@\[\]]+))(?::[0-9]{1,5})?"
)


def host_name(value: str) -> str:
    """A host as compared here: lower case, no brackets around an IPv6 address, no final dot."""
    return value.strip("[]").rstrip(".").lower()


class _TrustedHosts:
    """Answers 400 to a request whose Host header names none of ``names`` (nor, with
    ``ip_addresses``, an IP address). A page on another site that reaches this server through
    DNS rebinding sends that site's name; a browser sends an IP address only when it was asked
    for that address itself, so accepting one lets no other site in."""

    def __init__(self, app: ASGIApp, names: Iterable[str], ip_addresses: bool) -> None:
        self.app = app
        self.names = frozenset(host_name(name) for name in names)
        self.ip_addresses = ip_addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.accepts(
            Headers(scope=scope).get("host")
        ):
            await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def accepts(self, header: str | None) -> bool:
        if "*" in self.names:
            return True
        match = _HOST_HEADER.fullmatch(header or "")
        if match is None:
            return False
        host = host_name(match["ipv6"] or match["name"])
        if host in self.names:
            return True
        if not self.ip_addresses:
            return False
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True


class _SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    readers: ReaderPool,
    *,
    allowed_hosts: Iterable[str] = ("*",),
    ip_addresses: bool = False,
    decide: Decide | None = None,
    remote_decisions: bool = False,
) -> Starlette:
    """The web view over ``readers`` (each request borrows one; the caller closes them).

    ``allowed_hosts``: host names accepted in the Host header, any port (the CLI passes the
    address it binds, so a page on another site cannot reach this server through DNS
    rebinding); ``ip_addresses``: accept any IP address too (``ui --allow-remote``).
    ``decide``: records an approval decision (None: the view is read-only); decisions come
    from loopback clients only unless ``remote_decisions``.
    """
    session_key = secrets.token_bytes(32)  # a token from an earlier server never passes

    def form_token(session: str) -> str:
        return hmac.new(session_key, session.encode(), hashlib.sha256).hexdigest()

    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters.update(pages.FILTERS)
    templates.globals.update(
        items_of=pages.items_of,
        items_summary=pages.describe_item_counts,
        status_cell=pages.status_cell,
        figures_of=pages.figures_of,
    )

    def borrowed(work: Callable[[HistoryReader], T]) -> T:
        with readers.reader() as reader:
            return work(reader)

    async def read(work: Callable[[HistoryReader], T]) -> T:
        return await run_in_threadpool(borrowed, work)

    def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(templates.get_template(name).render(**context), status_code=status_code)

    async def run_list(request: Request) -> Response:
        query = pages.RunListQuery.parse(request.query_params)
        page, names = await read(
            lambda reader: (
                reader.workflow_run_page(
                    workflow=query.workflow,
                    status=query.status,
                    before=query.before,
                    after=query.after,
                    limit=query.limit,
                ),
                reader.workflow_names(),
            )
        )
        return render(
            "runs.html",
            page=page,
            query=query,
            workflows=names,
            statuses=RUN_STATUSES,
            url=request.url,
        )

    async def run_page(request: Request) -> Response:
        workflow_run_id = _run_id(request)
        expanded = pages.expanded_groups(request.query_params.get("expand"))
        opened = pages.expanded_groups(request.query_params.get("open"))  # fan-outs listed open

        def gather(reader: HistoryReader) -> dict[str, Any]:
            header = reader.workflow_run_header(workflow_run_id)
            state = run_state(reader, header)
            return {"header": header, "state": state, "chain": reader.resume_chain(workflow_run_id)}

        found = await read(gather)
        state = found["state"]
        drawing = await run_in_threadpool(draw, state.blueprint, expanded)
        return render(
            "run.html",
            header=found["header"],
            state=state,
            chain=found["chain"],
            drawing=drawing,
            graph=pages.graph_view(state, drawing, expanded),
            expanded=expanded,
            opened=opened,
            events_url=_events_url(request, workflow_run_id),
        )

    async def items_fragment(request: Request) -> Response:
        """A fan-out's items list alone: what the run page's live script swaps in."""
        workflow_run_id = _run_id(request)
        name = request.path_params["name"]

        def gather(reader: HistoryReader) -> dict[str, Any]:
            header = reader.workflow_run_header(workflow_run_id)
            return {"run": header.run, "agent": run_state(reader, header).agents.get(name)}

        found = await read(gather)
        view = pages.items_of(found["run"], found["agent"]) if found["agent"] else None
        if view is None:
            raise HTTPException(
                404, f"workflow run {workflow_run_id} has no fan-out named {name!r}"
            )
        return render("_items.html", view=view)

    async def agent_page(request: Request) -> Response:
        workflow_run_id = _run_id(request)
        name = request.path_params["name"]
        view = await read(lambda reader: pages.agent_view(reader, workflow_run_id, name))
        if view is None:
            raise HTTPException(404, f"workflow run {workflow_run_id} has no agent named {name!r}")
        return render("agent.html", view=view, events_url=_events_url(request, workflow_run_id))

    async def agent_fragment(request: Request) -> Response:
        """The agent page's body alone: what its live script swaps in when the agent settles."""
        workflow_run_id = _run_id(request)
        name = request.path_params["name"]
        view = await read(lambda reader: pages.agent_view(reader, workflow_run_id, name))
        if view is None:
            raise HTTPException(404, f"workflow run {workflow_run_id} has no agent named {name!r}")
        return render("_agent_body.html", view=view)

    async def run_events(request: Request) -> Response:
        workflow_run_id = _run_id(request)
        expanded = pages.expanded_groups(request.query_params.get("expand"))
        await read(
            lambda reader: reader.workflow_run_record(workflow_run_id)
        )  # 404 before streaming

        async def stream() -> AsyncIterator[ServerSentEvent]:
            last: str | None = None
            while True:
                try:
                    snapshot = await read(
                        lambda reader: pages.live_snapshot(reader, workflow_run_id, expanded)
                    )
                except StoreError as error:
                    _log(error)  # the stream ends; the page's next request gets the 503 page
                    return
                text = json.dumps(snapshot, sort_keys=True)
                if text != last:
                    last = text
                    yield ServerSentEvent(text, event="update")
                if snapshot["run"]["status"] != "running":
                    yield ServerSentEvent(text, event="end")
                    return
                await asyncio.sleep(LIVE_POLL_SECONDS)

        return EventSourceResponse(stream(), ping=15, send_timeout=30)

    async def approvals_page(request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE, "")
        fresh = not _SESSION.fullmatch(session)
        if fresh:
            session = secrets.token_urlsafe(32)
        pending = await read(lambda reader: reader.open_approvals(limit=200))
        response = render(
            "approvals.html",
            approvals=pending,
            token=form_token(session),
            read_only=decide is None,
            notice=request.query_params.get("decided"),
        )
        # Its forms must carry their Origin: under no-referrer a browser sends "null" instead.
        response.headers["referrer-policy"] = "same-origin"
        if fresh:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    async def decide_approval(request: Request) -> Response:
        workflow_run_id = _run_id(request)
        agent = request.path_params["name"]
        if decide is None:
            raise HTTPException(403, "this view is read-only")
        client = request.client.host if request.client else ""
        if not remote_decisions and not _is_loopback(client):
            raise HTTPException(
                403, "decisions are taken from this machine only (agentops ui --allow-remote)"
            )
        if not _same_origin(request):
            raise HTTPException(403, "cross-site request refused: decide from the approvals page")
        if request.headers.get("content-type", "").split(";")[0].strip() != (
            "application/x-www-form-urlencoded"
        ):
            raise HTTPException(400, "expected a form")
        body = await _body(request)
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        session = request.cookies.get(SESSION_COOKIE, "")
        token = form.get("token", "")
        if not _SESSION.fullmatch(session) or not hmac.compare_digest(
            token.encode(), form_token(session).encode()
        ):
            raise HTTPException(403, "missing or stale form token: reload the approvals page")
        verdict = VERDICTS.get(form.get("verdict", ""))
        if verdict is None:
            raise HTTPException(400, "the decision must be approve, reject or revise")
        text = form.get("text", "").strip() or None
        if verdict != "approved" and text is None:
            need = "a reason" if verdict == "rejected" else "feedback"
            raise HTTPException(400, f"write {need} in the text box first")
        try:
            await run_in_threadpool(decide, workflow_run_id, agent, verdict, text)
        except UsageError as error:
            raise HTTPException(409, str(error)) from None
        done = URL("/approvals").include_query_params(
            decided=f"{agent} in workflow run {workflow_run_id}: {verdict}"
        )
        return RedirectResponse(str(done), status_code=303)

    async def not_found(request: Request, error: Exception) -> Response:
        if isinstance(error, HTTPException):
            title = _ERROR_TITLES.get(error.status_code, "Not found")
            return render(
                "error.html", status_code=error.status_code, title=title, message=error.detail
            )
        return render("error.html", status_code=404, message=str(error))

    async def unavailable(request: Request, error: Exception) -> Response:
        _log(error)
        return render(
            "error.html", status_code=503, title="History unavailable", message=str(error)
        )

    routes = [
        Route("/", run_list),
        Route("/runs/{workflow_run_id:int}", run_page),
        Route("/runs/{workflow_run_id:int}/events", run_events),
        Route("/runs/{workflow_run_id:int}/agents/{name:str}", agent_page),
        Route("/runs/{workflow_run_id:int}/agents/{name:str}/body", agent_fragment),
        Route("/runs/{workflow_run_id:int}/items/{name:str}", items_fragment),
        Route("/approvals", approvals_page),
        Route(
            "/runs/{workflow_run_id:int}/approvals/{name:str}", decide_approval, methods=["POST"]
        ),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(_SecurityHeaders),
            Middleware(_TrustedHosts, names=allowed_hosts, ip_addresses=ip_addresses),
        ],
        exception_handlers={
            RunNotFoundError: not_found,
            StoreError: unavailable,
            HTTPException: not_found,
        },
    )
    return app


def _log(error: Exception) -> None:
    """One line on stderr, the way every agentops command reports an error; no traceback."""
    print(f"error: {error}", file=sys.stderr, flush=True)


def _run_id(request: Request) -> int:
    value = request.path_params["workflow_run_id"]
    if not isinstance(value, int) or not 1 <= value < 2**63:
        raise HTTPException(404, "no such workflow run")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _same_origin(request: Request) -> bool:
    """The form was sent by a page of this server: its Origin (else Referer) names the same
    scheme, host and port the request was sent to. A request with neither is refused."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower()


async def _body(request: Request) -> bytes:
    """The request body, refused past ``MAX_FORM_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise HTTPException(413, "the form is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _events_url(request: Request, workflow_run_id: int) -> str:
    url = URL(f"/runs/{workflow_run_id}/events")
    expand = request.query_params.get("expand")
    return str(url.include_query_params(expand=expand)) if expand else str(url)
