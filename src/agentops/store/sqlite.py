"""The history database file: where it is, its connection, and short write transactions
that survive several ``agentops`` processes writing to it at the same time.

A leaf: it imports nothing else of the store. Opening a file (creating and
migrating it, or read-only for the web view) is ``opening``'s job.

Concurrency: WAL mode (readers never wait for the writer), a 30 s busy timeout,
and on top of it an application-level retry of whole ``BEGIN IMMEDIATE``
transactions on "database is locked" (the busy handler is not consulted in every
case, e.g. while another process switches the file to WAL). Transactions are
short: one workflow run row, or one agent run with its attempts.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from agentops.errors import StoreError
from agentops.store.database import Dialect

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
    if "malformed" in message:  # SQLITE_CORRUPT: a damaged page
        return (
            f"history database {path} is damaged ({message}); save what it holds with "
            f"sqlite3 {path} .recover | sqlite3 recovered.db, and point --db (or AGENTOPS_DB) at that file or a new one"
        )
    if "file is not a database" in message:
        return (
            f"{path} is not a usable agentops history database ({message}); "
            "point --db (or AGENTOPS_DB) at another file"
        )
    if "unable to open" in message:
        return (
            f"cannot open history database {path} ({message}); check the path and its permissions"
        )
    if is_lock_error(error):
        return (
            f"history database {path} stayed locked by another process for over "
            f"{LOCK_PATIENCE_SECONDS:g}s; try again when it is done"
        )
    if "readonly" in message or "read-only" in message:
        return f"history database {path} is read-only ({message}); make it writable or choose another --db"
    if "disk I/O error" in message or "disk is full" in message:
        return (
            f"history database {path} failed with a disk error ({message}); check the disk it is on "
            "(free space, permissions, a read-only or failing device), or choose another --db"
        )
    return f"history database {path}: {message}"


class _RolledBack(Exception):
    """Ends ``check_writable``'s transaction: ``write`` rolls back on any exception."""


class Store:
    """An open history database. Use as a context manager, or call ``close()``.

    ``path`` is the file as given (for messages); one thread at a time may use a Store.
    A ``read_only`` store (see ``opening.open_reader``) refuses ``write``.
    """

    dialect: Dialect = "sqlite"

    def __init__(
        self, path: Path, connection: sqlite3.Connection, *, read_only: bool = False
    ) -> None:
        self.path = path
        self.connection = connection
        self.read_only = read_only

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
        if self.read_only:
            raise StoreError(
                f"history database {self.path} was opened read-only; nothing can be written to it"
            )
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

    def check_writable(self, probe: Callable[[sqlite3.Connection], None]) -> None:
        """Make ``probe``'s writes, then roll them back (see ``Database.check_writable``)."""

        def work(connection: sqlite3.Connection) -> None:
            probe(connection)
            raise _RolledBack

        with contextlib.suppress(_RolledBack):
            self.write(work)

    def read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Rows of one query; database errors become one-line ``StoreError``s."""
        try:
            return retry_when_locked(lambda: self.connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as error:
            raise StoreError(describe(error, self.path)) from error
