"""``agentops ui``: check the address, open the history, bind, print the URL, serve.

It binds 127.0.0.1 by default. The history holds prompts and outputs, so any
other address needs ``allow_remote`` and prints a warning. The app accepts only
requests whose Host header names the address it was bound to, localhost, the names
given with ``--allowed-host``, and, when serving remotely, any IP address and this
machine's host name: a page on another site that reaches it through DNS rebinding
sends that site's name, and is refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from agentops.errors import StoreError, UsageError

if TYPE_CHECKING:
    from agentops.store.database import DatabasePool
    from agentops.store.location import DbLocation

LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))
# PostgreSQL connections the view holds at most: requests beyond wait for one to come free
# (a page is a few short queries); decisions, a person's clicks, need few.
READER_CONNECTIONS = 8
WRITER_CONNECTIONS = 2


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_remote: bool) -> str | None:
    """The warning to print for ``host`` (None for a loopback address); ``UsageError`` without the flag."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise UsageError(
            f"--host {host} would serve your run history (prompts, outputs) to other machines; "
            "pass --allow-remote as well if you mean it, or leave --host at 127.0.0.1"
        )
    return (
        f"warning: serving the run history on {host}: anyone who can reach this address can read "
        "every prompt and output in it (there is no login)"
    )


_HOST_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?", re.ASCII)  # a DNS name, or an IPv4 address


def check_allowed_host(name: str) -> str:
    """``name`` when it is a plain host name (``--allowed-host``); ``UsageError`` otherwise."""
    if not _HOST_NAME.fullmatch(name):
        raise UsageError(
            f"--allowed-host expects a host name such as viewer.example (no port, scheme or wildcard), got {name!r}"
        )
    return name


def prepare_history(db: DbLocation) -> None:
    """Upgrade an older history once (as every agentops command does) so it can be read read-only."""
    from agentops.store.stores import open_database, open_read_only

    if db.path is not None and not db.path.exists():
        raise StoreError(
            f"no history database at {db}; run a workflow first (agentops run FILE), or pass --db"
        )
    open_database(db, create=False).close()
    open_read_only(db).close()  # fails now, with the reason, rather than on the first page


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if port and error.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise UsageError(
                f"port {port} on {host} is in use; choose another with --port (0: any free port)"
            ) from None
        raise UsageError(
            f"cannot listen on {host}:{port} ({error.strerror}); check --host and --port"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def decider_of(writers: DatabasePool) -> Callable[[int, str, str, str | None], Any]:
    """Records a decision taken in the web view, on a database borrowed from ``writers``:
    who is this server's OS user (the view has no login), marked as the web view's."""
    from agentops.store.approvals import decider
    from agentops.store.sqlite_writer import SqliteHistoryWriter

    by = f"{decider(None)} (web view)"

    def decide(workflow_run_id: int, agent: str, verdict: str, text: str | None) -> Any:
        with writers.borrow() as store:
            return SqliteHistoryWriter(store).decide_approval(
                workflow_run_id, agent, verdict, by=by, text=text
            )

    return decide


def serve(
    db: DbLocation,
    *,
    host: str,
    port: int,
    allow_remote: bool = False,
    allowed_hosts: Iterable[str] = (),
) -> None:
    warning = check_host(host, allow_remote=allow_remote)
    remote = warning is not None  # a non-loopback address, allowed
    names = {*LOOPBACK_NAMES, host, *map(check_allowed_host, allowed_hosts)}
    if remote:  # other machines may name this one as its owner does
        names.add(socket.gethostname())
    prepare_history(db)
    import uvicorn

    from agentops.store.stores import open_pool, reader_pool
    from agentops.web.app import create_app

    readers = reader_pool(db, size=READER_CONNECTIONS)
    # Opened on the first decision: a view nobody decides in holds no writing connection.
    writers = open_pool(db, read_only=False, size=WRITER_CONNECTIONS, eager=False)
    try:
        sock = bind(host, port)
        bound_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        app = create_app(
            readers,
            allowed_hosts=names,
            ip_addresses=remote,
            decide=decider_of(writers),
            remote_decisions=remote,
        )
        if warning:
            print(warning, file=sys.stderr, flush=True)
        print(
            f"AgentOps history view of {db} at http://{shown}:{bound_port}/ (Ctrl-C to stop)",
            flush=True,
        )
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        writers.close()
        readers.close()
