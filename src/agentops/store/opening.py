"""Opening a history file: for writing (created and migrated on open, as every
``agentops`` command does) or read-only (the web view, which must never change
the file nor hold a lock a writer waits for).

Both set the same pragmas; a read-only connection is opened ``mode=ro`` and
``query_only`` on top, and in WAL mode its reads never block a writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agentops.errors import StoreError
from agentops.store.migrations import migrate, pending_migrations
from agentops.store.sqlite import (
    BUSY_TIMEOUT_SECONDS,
    DEFAULT_DB_NAME,
    Store,
    default_db_path,
    describe,
    retry_when_locked,
)


def open_store(path: str | Path | None = None, *, create: bool = True) -> Store:
    """Open (and create, and migrate) the history database at ``path``.

    ``None``: ``$AGENTOPS_DB`` or ``./agentops.db``. With ``create=False`` a file
    that does not exist is not created: the store is empty (in memory), which
    is what the history commands want.
    """
    target = _target(path)
    in_memory = not create and not target.exists()
    if not in_memory and not target.parent.exists():
        raise StoreError(
            f"cannot create history database {target}: directory {target.parent} does not exist"
        )
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


def open_reader(path: str | Path | None = None) -> Store:
    """Open an existing, up-to-date history file read-only (``StoreError`` otherwise).

    The caller upgrades an older file first (``open_store``): a read-only
    connection cannot migrate it.
    """
    target = _target(path)
    if not target.exists():
        raise StoreError(
            f"no history database at {target}; run a workflow first, or point --db at the file"
        )
    try:
        connection = sqlite3.connect(
            f"{target.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as error:
        raise StoreError(describe(error, target)) from error
    connection.row_factory = sqlite3.Row
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        connection.execute("PRAGMA query_only = ON")
        if pending_migrations(connection, target):
            raise StoreError(
                f"history database {target} was written by an older agentops; "
                f"open it once for writing (e.g. agentops list-workflow-runs --db {target}) to upgrade it"
            )
    except sqlite3.Error as error:
        connection.close()
        raise StoreError(describe(error, target)) from error
    except BaseException:
        connection.close()
        raise
    return Store(target, connection, read_only=True)


def _target(path: str | Path | None) -> Path:
    target = Path(path) if path is not None else default_db_path()
    if target.is_dir():
        raise StoreError(
            f"{target} is a directory; give --db a file path, e.g. {target / DEFAULT_DB_NAME}"
        )
    return target


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    connection.execute("PRAGMA foreign_keys = ON")
    # Switching to WAL takes a lock the busy handler does not always wait for.
    retry_when_locked(lambda: connection.execute("PRAGMA journal_mode = WAL").fetchall())
    # NORMAL in WAL mode: a commit survives a killed or crashed process (it is in the WAL
    # file), and the file is never corrupted; only an OS crash or power cut may roll back the
    # last commits. FULL would fsync every commit on the event loop: +15 % on 10,000 agents.
    connection.execute("PRAGMA synchronous = NORMAL")
