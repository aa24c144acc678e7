"""The history in PostgreSQL: the same schema, migrations, writer and queries as SQLite's,
over psycopg 3 (the ``[postgres]`` extra). Imported only when ``--db`` is a ``postgresql://`` URL.

What differs from SQLite is here and nowhere else:

- ``translate``: the history's SQL is written once in the form SQLite reads; on its way to
  the server ``?`` becomes ``%s``, ``IS ?`` becomes ``IS NOT DISTINCT FROM``, SQLite's
  two-argument ``max`` becomes ``greatest``, ``group_concat`` ``string_agg``, and an ``INSERT`` returns the new row's ``id``
  (``lastrowid``, as SQLite's cursor has it).
- Types: ``migrations.for_postgres`` (BIGINT identities, DOUBLE PRECISION); a ``sum`` of
  BIGINTs is NUMERIC in PostgreSQL, read back as the int (or float) SQLite gives.
- Migrations run in one transaction under an advisory lock, so two processes starting on an
  empty database at once apply them exactly once, and a database a newer agentops migrated
  further is refused by name (``migrations.pending_of``).
- Concurrency is PostgreSQL's: each write is one READ COMMITTED transaction; the history's
  writes only insert rows and update their own run's, so writers never wait on each other
  beyond a row lock, and a serialization failure or deadlock (none expected) is retried whole.
- Connections: a command (a run, a batch, a history command) holds one, used by one thread;
  what serves many threads at once (the web view) borrows from a ``PostgresPool``
  (psycopg_pool), at most a few connections whatever the number of requests.
- Messages name the database by its URL without the password (``location.DbLocation``), and
  an unreachable server by its host and port.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar

import psycopg
from psycopg.adapt import Loader

from agentops.errors import StoreError
from agentops.store.database import Connection, Cursor, Dialect, T
from agentops.store.location import DbLocation
from agentops.store.migrations import MIGRATIONS_TABLE, pending_of

__all__ = ["PostgresPool", "PostgresStore", "open_postgres", "translate"]

# pg_advisory_xact_lock key of the migrations: "agentops" read as a 64-bit integer.
MIGRATION_LOCK = int.from_bytes(b"agentops", "big") >> 1
CONNECT_TIMEOUT_SECONDS = 10
POOL_WAIT_SECONDS = 30.0  # how long a borrower waits for a pooled connection to come free
WRITE_ATTEMPTS = 8
_RETRIED = {"40001", "40P01"}  # serialization_failure, deadlock_detected

_TRANSLATIONS = (
    (re.compile(r"\bIS %s"), "IS NOT DISTINCT FROM %s"),
    (re.compile(r"\bmax\((\w+), %s\)"), r"greatest(\1, %s)"),
    # SQLite's group_concat(DISTINCT x) joins with ","
    (re.compile(r"\bgroup_concat\(DISTINCT ([\w.]+)\)"), r"string_agg(DISTINCT \1, ',')"),
)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_WITHOUT_ID = {"_migrations", "response_cache"}
# The tables a workflow run writes (see check_writable).
_WRITTEN = (
    "workflow_runs",
    "runs",
    "attempts",
    "agent_starts",
    "tool_calls",
    "tool_servers",
)  # tables keyed by something else: no id to return


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite-form SQL as psycopg takes it (see the module's docstring)."""
    out: list[str] = []
    in_literal = False
    for char in sql:
        if char == "'":
            in_literal = not in_literal
        if char == "%":
            out.append("%%")  # psycopg reads % as a placeholder everywhere, literals included
        elif char == "?" and not in_literal:
            out.append("%s")
        else:
            out.append(char)
    text = "".join(out)
    for pattern, replacement in _TRANSLATIONS:
        text = pattern.sub(replacement, text)
    match = _INSERT.match(text)
    if match and match.group(1) not in _WITHOUT_ID and "RETURNING" not in text.upper():
        text += " RETURNING id"
    return text


class _Row(tuple[Any, ...]):
    """A result row read by index or by column name, as ``sqlite3.Row`` is."""

    __slots__ = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[_Row]:
    index = {name: position for position, name in enumerate(names)}
    return type("Row", (_Row,), {"__slots__": (), "_index": index})


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    description = cursor.description or ()
    return _row_class(tuple(column.name for column in description))


class _NumberLoader(Loader):
    """NUMERIC (what ``sum`` of BIGINTs gives) as an int, or a float: what SQLite returns."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode("ascii")
        return int(text) if text.lstrip("-").isdigit() else float(text)


def _clean_rows(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """``_clean`` over many rows: one quick look for a NUL first, since there almost never is one
    (cleaning each value of each row was a visible part of recording an agent)."""
    if any("\x00" in p for row in rows for p in row if type(p) is str):
        return [_clean(row) for row in rows]
    return rows


def _clean(parameters: Sequence[Any]) -> tuple[Any, ...]:
    # PostgreSQL text cannot hold NUL, which SQLite stores (a model may write one): U+FFFD instead.
    return tuple(
        p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in parameters
    )


class _Cursor:
    def __init__(self, cursor: psycopg.Cursor[Any], lastrowid: int | None = None) -> None:
        self._cursor = cursor
        self._lastrowid = lastrowid

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchmany(self, size: int = 1000, /) -> list[Any]:
        return self._cursor.fetchmany(size)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class _Connection:
    """The history's SQL on a psycopg connection, translated; errors as one-line ``StoreError``s."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        text = translate(sql)
        try:
            cursor = self._store.raw.execute(text, _clean(parameters) if parameters else None)
            if text.endswith(" RETURNING id"):
                row = cursor.fetchone()
                return _Cursor(cursor, None if row is None else int(row[0]))
        except psycopg.Error as error:
            raise StoreError(self._store.describe(error)) from error
        return _Cursor(cursor)

    def insert_rows(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """``database.insert_rows``: every row in one pipelined round trip, ids in order."""
        text = translate(sql)
        ids: list[int] = []
        try:
            cursor = self._store.raw.cursor()
            cursor.executemany(text, _clean_rows(rows), returning=True)
            while True:
                found = cursor.fetchone()
                if found is not None:
                    ids.append(int(found[0]))
                if not cursor.nextset():
                    break
        except psycopg.Error as error:
            raise StoreError(self._store.describe(error)) from error
        if len(ids) != len(rows):  # pragma: no cover - one id per inserted row
            raise StoreError("the history database did not return every new row's id")
        return ids

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        text = translate(sql).removesuffix(" RETURNING id")
        rows = _clean_rows(list(parameters))
        try:
            cursor = self._store.raw.cursor()
            if rows:
                cursor.executemany(text, rows)
        except psycopg.Error as error:
            raise StoreError(self._store.describe(error)) from error
        return _Cursor(cursor)


class PostgresStore:
    """An open, migrated PostgreSQL history (one connection; one thread at a time). Closing
    it closes the connection: one lent by ``PostgresPool`` goes back when its borrow ends."""

    dialect: Dialect = "postgresql"

    def __init__(
        self, location: DbLocation, raw: psycopg.Connection[Any], *, read_only: bool = False
    ) -> None:
        self.location = location
        self.raw = raw
        self.read_only = read_only
        self._connection = _Connection(self)

    @property
    def path(self) -> DbLocation:
        return self.location

    @property
    def connection(self) -> Connection:
        return self._connection

    def write(self, work: Callable[[Connection], T]) -> T:
        if self.read_only:
            raise StoreError(
                f"history database {self.location} was opened read-only; nothing can be written to it"
            )
        delay = 0.005
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.raw.transaction():
                    return work(self._connection)
            except StoreError as error:
                cause = error.__cause__
                retried = isinstance(cause, psycopg.Error) and cause.sqlstate in _RETRIED
                if not retried or attempt == WRITE_ATTEMPTS - 1:
                    raise
            except psycopg.Error as error:  # the COMMIT itself
                raise StoreError(self.describe(error)) from error
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 0.25)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def check_writable(self, probe: Callable[[Connection], None]) -> None:
        """Ask the server whether the history's writes would be taken (``probe`` is not run:
        identities a rolled-back insert took are not given back, so every run would leave a gap)."""
        row = self.read(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
            "array_to_string(ARRAY(SELECT t FROM unnest(ARRAY["
            + ", ".join(f"'{table}'" for table in _WRITTEN)
            + "]) t WHERE NOT has_table_privilege(t, 'INSERT, UPDATE, DELETE')), ', ')"
        )[0]
        standby, read_only, denied = row[0], row[1] == "on", row[2]
        if self.read_only or standby or read_only:
            raise StoreError(
                f"history database {self.location} is read-only (a standby, or read-only "
                "transactions); point --db (or AGENTOPS_DB) at the primary"
            )
        if denied:
            raise StoreError(
                f"history database {self.location}: the user may not write to {denied}; "
                "grant it INSERT, UPDATE and DELETE on the history's tables"
            )

    def read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[Any]:
        return self._connection.execute(sql, parameters).fetchall()

    def describe(self, error: psycopg.Error) -> str:
        return describe(error, self.location)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def describe(error: psycopg.Error, location: DbLocation) -> str:
    """One line saying what went wrong with the database at ``location`` (never its password)."""
    reason = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    reason = _scrub(reason, location)
    if isinstance(error, psycopg.OperationalError) and (
        error.sqlstate is None or error.sqlstate.startswith("08")
    ):
        return (
            f"cannot reach the history database {location} at {location.host_port} ({reason}); "
            "check that the server is running and reachable, and the URL in --db (or AGENTOPS_DB)"
        )
    return f"history database {location}: {reason}"


def _connect_options(location: DbLocation) -> dict[str, Any]:
    """What every connection to ``location`` is opened with (single or pooled)."""
    options: dict[str, Any] = {
        "autocommit": True,
        "row_factory": _row_factory,
        "application_name": "agentops",
    }
    assert location.url is not None
    if "connect_timeout" not in location.url:
        options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return options


def _configure(raw: psycopg.Connection[Any], *, read_only: bool) -> None:
    raw.adapters.register_loader("numeric", _NumberLoader)
    if read_only:
        raw.execute("SET default_transaction_read_only = on")


def open_postgres(location: DbLocation, *, read_only: bool = False) -> PostgresStore:
    """Connect (``StoreError`` naming host and port when the server cannot be reached) and
    migrate; ``read_only``: every transaction read-only (the web view), nothing migrated.

    One connection, for one thread: a run's writer and its budget's reserve → settle need
    their statements on one session (the migration's advisory lock and ``SELECT … FOR
    UPDATE`` hold only within their transaction), and a run does its writes in order on
    one event loop, so a pool would add only a hand-over per statement. What many threads
    use at once (the web view) takes ``PostgresPool``."""
    assert location.url is not None
    try:
        raw: psycopg.Connection[Any] = psycopg.connect(location.url, **_connect_options(location))
    except psycopg.Error as error:
        raise StoreError(describe(error, location)) from error
    store = PostgresStore(location, raw, read_only=read_only)
    try:
        _configure(raw, read_only=read_only)
        if read_only:
            if pending_of(_applied(raw), location):
                raise StoreError(
                    f"history database {location} is not migrated to this agentops; open it once "
                    f"for writing (e.g. agentops list-workflow-runs --db URL) to upgrade it"
                )
        else:
            migrate(store)
    except psycopg.Error as error:
        raw.close()
        raise StoreError(describe(error, location)) from error
    except BaseException:
        raw.close()
        raise
    return store


class PostgresPool:
    """A ``database.DatabasePool`` over ``psycopg_pool.ConnectionPool``: up to ``size``
    connections shared by every thread, each lent for one ``borrow`` (a web view request), so
    a slow query holds up only its own request. Opened on an already migrated database
    (``open_postgres`` first): a pool never migrates.

    ``min_size`` connections are opened at once (``StoreError`` naming host and port when they
    cannot be); a connection is checked before it is lent, so one that a restarted server
    dropped is replaced instead of failing a request."""

    def __init__(
        self, location: DbLocation, *, read_only: bool, size: int, min_size: int = 1
    ) -> None:
        from psycopg_pool import ConnectionPool

        self.location = location
        self.read_only = read_only
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            location.url or "",
            kwargs=_connect_options(location),
            min_size=min_size,
            max_size=size,
            open=False,
            configure=functools.partial(_configure, read_only=read_only),
            check=ConnectionPool.check_connection,
            name=f"agentops {location}",
            timeout=POOL_WAIT_SECONDS,
        )
        try:
            if min_size:  # the pool retries quietly until its timeout: this says why at once
                psycopg.connect(location.url or "", **_connect_options(location)).close()
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as error:
            self._pool.close()
            raise StoreError(self._describe(error)) from error

    @contextlib.contextmanager
    def borrow(self) -> Iterator[PostgresStore]:
        try:
            raw = self._pool.getconn()
        except psycopg.Error as error:
            raise StoreError(self._describe(error)) from error
        try:
            yield PostgresStore(self.location, raw, read_only=self.read_only)
        finally:
            # Back to the pool: a transaction left open is rolled back, a broken connection
            # replaced.
            self._pool.putconn(raw)

    def close(self) -> None:
        self._pool.close()

    def _describe(self, error: psycopg.Error) -> str:
        from psycopg_pool import PoolTimeout

        if isinstance(error, PoolTimeout):
            return (
                f"cannot get a connection to the history database {self.location} at "
                f"{self.location.host_port} in time (the server is unreachable, or every "
                "pooled connection stayed busy); check that the server is running and "
                "reachable, and the URL in --db (or AGENTOPS_DB)"
            )
        return describe(error, self.location)


def migrate(store: PostgresStore) -> list[int]:
    """Apply every migration the database lacks, in one transaction under an advisory lock."""
    raw = store.raw
    if not pending_of(_applied(raw), store.location):
        return []  # the common case: one read, no lock
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Read again under the lock: another process may have just migrated the database.
        applied = _applied(raw)
        pending = pending_of(applied, store.location)
        if not applied:  # (a stale catalog cache could make IF NOT EXISTS try to create it again)
            raw.execute(MIGRATIONS_TABLE)
        for migration in pending:
            for statement in migration.postgres_statements():
                raw.execute(statement.encode())  # bytes: sent as written, no placeholders
            raw.execute(
                "INSERT INTO _migrations (number, name, applied_at) VALUES (%s, %s, now()::text)",
                (migration.number, migration.name),
            )
    return [m.number for m in pending]


def _applied(raw: psycopg.Connection[Any]) -> set[int]:
    # Read from pg_class under the statement's snapshot, not with to_regclass: that looks the
    # name up in the backend's catalog cache, which may still hold "no such table" from before
    # the advisory lock was granted, when another process has since created it.
    row = raw.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relname = '_migrations' AND n.nspname = current_schema())"
    ).fetchone()
    if row is None or not row[0]:
        return set()
    return {int(r[0]) for r in raw.execute("SELECT number FROM _migrations").fetchall()}


def _scrub(text: str, location: DbLocation) -> str:
    """The URL's password out of a driver message (libpq does not echo it; this makes sure)."""
    from urllib.parse import unquote, urlsplit

    password = urlsplit(location.url or "").password
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text
