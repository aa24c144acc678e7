"""Opening the history that ``--db`` names (``location.locate``): a SQLite file
(``opening``) or a PostgreSQL database (``postgres``, imported only then), migrated for
writing or read-only, behind the one ``database.Database`` interface the writer and the
queries use. Every command opens its history through here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agentops.errors import ConfigurationError
from agentops.store.database import Database
from agentops.store.location import DbLocation, locate

if TYPE_CHECKING:
    from agentops.store.reader import HistoryReader

__all__ = ["history_reader", "open_database", "open_read_only"]


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


def _open_postgres(location: DbLocation, *, read_only: bool) -> Database:
    try:
        from agentops.store.postgres import open_postgres
    except ImportError as error:
        raise ConfigurationError(
            f"--db {location}: a PostgreSQL history needs the postgres extra ({error.name} is "
            "missing): pip install 'agentops[postgres]'"
        ) from None
    return open_postgres(location, read_only=read_only)
