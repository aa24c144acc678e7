"""Opening the history that ``--db`` names (``location.locate``): a SQLite file
(``opening``) or a PostgreSQL database (``postgres``, imported only then), migrated for
writing or read-only, behind the one ``database.Database`` interface the writer and the
queries use. Every command opens its history through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from agentops.errors import ConfigurationError
from agentops.store.database import Database, DatabasePool, ThreadDatabases
from agentops.store.location import DbLocation, locate

if TYPE_CHECKING:
    from agentops.store.reader import HistoryReader

__all__ = [
    "ReaderPool",
    "history_reader",
    "open_database",
    "open_pool",
    "open_read_only",
    "reader_pool",
]


def open_database(db: str | Path | DbLocation | None, *, create: bool = True) -> Database:
    """The history at ``db``, created (``create``: a missing SQLite file is created; else it
    reads as empty) and migrated."""
    location = locate(db)
    if location.is_postgres:
        return _open_postgres(location, read_only=False)
    from agentops.store.opening import open_store

    assert location.path is not None
    return open_store(location.path, create=create)


def open_read_only(db: str | Path | DbLocation | None) -> Database:
    """The history at ``db``, read-only (the web view): never migrated nor written."""
    location = locate(db)
    if location.is_postgres:
        return _open_postgres(location, read_only=True)
    from agentops.store.opening import open_reader

    assert location.path is not None
    return open_reader(location.path)


def history_reader(
    db: str | Path | DbLocation | None, *, create: bool = False, read_only: bool = False
) -> HistoryReader:
    """A ``HistoryReader`` over the history at ``db`` (see ``open_database``)."""
    from agentops.store.sqlite_reader import SqliteHistoryReader

    opened = open_read_only(db) if read_only else open_database(db, create=create)
    return SqliteHistoryReader(opened)


def open_pool(
    db: str | Path | DbLocation | None, *, read_only: bool, size: int, eager: bool = True
) -> DatabasePool:
    """Databases at ``db`` for many threads at once (the web view): SQLite's one per thread,
    PostgreSQL's up to ``size`` pooled connections (``eager``: one opened now, so an
    unreachable server is named before serving). The history must be migrated already."""
    location = locate(db)
    if location.is_postgres:
        _postgres_module(location, pool=True)
        from agentops.store.postgres import PostgresPool

        return PostgresPool(location, read_only=read_only, size=size, min_size=int(eager))
    if read_only:
        return ThreadDatabases(lambda: open_read_only(location))
    return ThreadDatabases(lambda: open_database(location, create=False))


class ReaderPool:
    """``HistoryReader``s for many threads at once (the web view), over ``open_pool``."""

    def __init__(self, databases: DatabasePool) -> None:
        self._databases = databases

    @contextmanager
    def reader(self) -> Iterator[HistoryReader]:
        """A reader for this thread until the block ends."""
        from agentops.store.sqlite_reader import SqliteHistoryReader

        with self._databases.borrow() as database:
            yield SqliteHistoryReader(database)

    def close(self) -> None:
        self._databases.close()


def reader_pool(db: str | Path | DbLocation | None, *, size: int) -> ReaderPool:
    """Read-only ``HistoryReader``s over the history at ``db`` (see ``open_pool``)."""
    return ReaderPool(open_pool(db, read_only=True, size=size))


def _postgres_module(location: DbLocation, *, pool: bool = False) -> None:
    try:
        import agentops.store.postgres  # noqa: F401

        if pool:
            import psycopg_pool  # noqa: F401
    except ImportError as error:
        raise ConfigurationError(
            f"--db {location}: a PostgreSQL history needs the postgres extra ({error.name} is "
            "missing): pip install 'agentops[postgres]'"
        ) from None


def _open_postgres(location: DbLocation, *, read_only: bool) -> Database:
    _postgres_module(location)
    from agentops.store.postgres import open_postgres

    return open_postgres(location, read_only=read_only)
