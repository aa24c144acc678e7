"""The history database file: where it is, opening it, and short write transactions
that survive several ``agentops`` processes writing to it at the same time.

Concurrency: WAL mode (readers never wait for the writer), a 30 s busy timeout,
and on top of it an application-level retry of whole ``BEGIN IMMEDIATE``
transactions on "database is locked" (the busy handler is not consulted in every
case, e.g. while another process switches the file to WAL). Transactions are
short: one workflow run row, or one agent run with its attempts.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from ..errors import StoreError
from .liveness import effective_status

if TYPE_CHECKING:
    from .resume import ResumeState

DEFAULT_DB_NAME = "agentops.db"
BUSY_TIMEOUT_SECONDS = 30.0
# Total patience for one write across retries: well past the busy timeout, because a
# writer that waits this long is rarer than a user losing a finished agent's result.
LOCK_PATIENCE_SECONDS = 120.0

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

T = TypeVar("T")


def default_db_path() -> Path:
    """``$AGENTOPS_DB`` if set, else ``agentops.db`` in the working directory."""
    return Path(os.environ.get("AGENTOPS_DB") or DEFAULT_DB_NAME)


def is_lock_error(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    message = str(error).lower()
    return "database is locked" in message or "database table is locked" in message


def retry_when_locked(action: Callable[[], T], *, patience: float = LOCK_PATIENCE_SECONDS) -> T:
    """Run ``action``; while it fails with "database is locked", wait (jittered, growing) and rerun it."""
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if not is_lock_error(error) or time.monotonic() >= deadline:
                raise
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.25)


def describe(error: sqlite3.Error, path: Path) -> str:
    """One line saying what went wrong with the file at ``path`` and what to do."""
    message = str(error)
    if "file is not a database" in message or "malformed" in message:
        return (
            f"{path} is not a usable agentops history database ({message}); "
            "point --db (or AGENTOPS_DB) at another file"
        )
    if "unable to open" in message:
        return f"cannot open history database {path} ({message}); check the path and its permissions"
    if is_lock_error(error):
        return (
            f"history database {path} stayed locked by another process for over "
            f"{LOCK_PATIENCE_SECONDS:g}s; try again when it is done"
        )
    if "readonly" in message or "read-only" in message:
        return f"history database {path} is read-only ({message}); make it writable or choose another --db"
    return f"history database {path}: {message}"


class Store:
    """An open history database. Use as a context manager, or call ``close()``.

    ``path`` is the file as given (for messages); one thread at a time may use a Store.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.connection = connection

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- access ----------------------------------------------------------------------

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, retried whole while locked.

        ``work`` may run more than once, so it must only touch the database.
        """
        connection = self.connection

        def attempt() -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            return result

        try:
            return retry_when_locked(attempt)
        except sqlite3.Error as error:
            raise StoreError(describe(error, self.path)) from error

    def read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Rows of one query; database errors become one-line ``StoreError``s."""
        try:
            return retry_when_locked(lambda: self.connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as error:
            raise StoreError(describe(error, self.path)) from error

    # --- runs ------------------------------------------------------------------------

    def load_run_for_resume(self, workflow_run_id: int) -> ResumeState:
        """What ``resume`` needs from a recorded run (raises ``RunNotFoundError``)."""
        from .resume import load_resume_state

        return load_resume_state(self, workflow_run_id)

    effective_status = staticmethod(effective_status)


def open_store(path: str | Path | None = None, *, create: bool = True) -> Store:
    """Open (and create, and migrate) the history database at ``path``.

    ``None``: ``$AGENTOPS_DB`` or ``./agentops.db``. With ``create=False`` a file
    that does not exist is not created: the store is empty (in memory), which
    is what the history commands want.
    """
    from .migrations import migrate

    target = Path(path) if path is not None else default_db_path()
    if target.is_dir():
        raise StoreError(f"{target} is a directory; give --db a file path, e.g. {target / DEFAULT_DB_NAME}")
    in_memory = not create and not target.exists()
    if not in_memory and not target.parent.exists():
        raise StoreError(f"cannot create history database {target}: directory {target.parent} does not exist")
    try:
        connection = sqlite3.connect(
            ":memory:" if in_memory else target,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # opened in one thread, closed in another is fine
        )
    except sqlite3.Error as error:
        raise StoreError(describe(error, target)) from error
    connection.row_factory = sqlite3.Row
    store = Store(target, connection)
    try:
        _configure(connection)
        migrate(store)
    except sqlite3.Error as error:
        connection.close()
        raise StoreError(describe(error, target)) from error
    except BaseException:
        connection.close()
        raise
    return store


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    connection.execute("PRAGMA foreign_keys = ON")
    # Switching to WAL takes a lock the busy handler does not always wait for.
    retry_when_locked(lambda: connection.execute("PRAGMA journal_mode = WAL").fetchall())
    # NORMAL in WAL mode: a commit survives a killed or crashed process (it is in the WAL
    # file), and the file is never corrupted; only an OS crash or power cut may roll back the
    # last commits. FULL would fsync every commit on the event loop: +15 % on 10,000 agents.
    connection.execute("PRAGMA synchronous = NORMAL")
