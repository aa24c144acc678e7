"""What the history's SQL runs on: an open database, SQLite (``sqlite.Store``) or PostgreSQL
(``postgres.PostgresStore``), as the writer and the queries see it.

The queries are written once, in the SQL both understand, with ``?`` placeholders (the
SQLite form); ``postgres`` translates the few differences (placeholders, ``IS ?``, a
two-argument ``max``, the id of a new row) on their way to the server. A leaf: it
imports nothing of the store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from agentops.errors import StoreError

T = TypeVar("T")

Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """What a statement returns: its rows (read by index or by column name)."""

    @property
    def lastrowid(self) -> int | None: ...

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the history's SQL uses (``sqlite3.Connection`` has it)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


@runtime_checkable
class Database(Protocol):
    """An open, migrated history database; one thread at a time. (``isinstance`` tells it
    from a ``HistoryWriter``.)"""

    dialect: Dialect
    read_only: bool

    @property
    def path(self) -> object:
        """Where it is, as messages name it (a file, or a URL without its password)."""
        ...

    @property
    def connection(self) -> Connection: ...

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction (retried whole where the database asks for it)."""
        ...

    def check_writable(self, probe: Callable[[Connection], None]) -> None:
        """``StoreError`` unless ``probe``'s writes would be taken; nothing is changed. SQLite
        makes them and rolls back; PostgreSQL asks the server (privileges, a read-only
        server), since a rolled-back insert there still uses up ids."""
        ...

    def read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        """Rows of one query; database errors become one-line ``StoreError``s."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Database: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class DatabasePool(Protocol):
    """Databases for many threads at once (the web view's requests): what ``borrow`` yields is
    the calling thread's alone until its ``with`` block ends."""

    def borrow(self) -> AbstractContextManager[Database]: ...

    def close(self) -> None:
        """Close every database it opened (none may be borrowed then)."""
        ...


class ThreadDatabases:
    """A ``DatabasePool`` of one database per thread, opened by ``open`` on the thread's first
    borrow and kept: SQLite's, where a connection is cheap and local, and belongs to one thread
    at a time. (PostgreSQL's is ``postgres.PostgresPool``: connections there are few and
    costly, so threads share a bounded set.)"""

    def __init__(self, open: Callable[[], Database]) -> None:
        self._open = open
        self._local = threading.local()
        self._all: list[Database] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Database]:
        database: Database | None = getattr(self._local, "database", None)
        if database is None:
            database = self._open()
            self._local.database = database
            with self._lock:
                self._all.append(database)
        yield database

    def close(self) -> None:
        with self._lock:
            opened, self._all = self._all, []
        for database in opened:
            database.close()


def insert_rows(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Insert ``rows`` (``sql``: an INSERT of one row) and return their ids, in order. SQLite
    runs one statement per row, in-process; PostgreSQL pipelines them all in one round trip
    (its connection's ``insert_rows``), which is what keeps recording there fast."""
    pipelined = getattr(connection, "insert_rows", None)
    if pipelined is not None:
        return list(pipelined(sql, rows))
    ids = []
    for row in rows:
        cursor = connection.execute(sql, row)
        if cursor.lastrowid is None:  # pragma: no cover - an INSERT always sets it
            raise StoreError("the history database did not return the new row's id")
        ids.append(cursor.lastrowid)
    return ids
