"""Where the history is: ``--db`` (or ``$AGENTOPS_DB``) read as a SQLite file or a PostgreSQL URL.

- ``postgresql://user@host:5432/dbname`` (or ``postgres://``): PostgreSQL. The password
  comes from the URL, ``PGPASSWORD`` or ``~/.pgpass`` (libpq's rules).
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, or a plain path: SQLite.
- Nothing: ``$AGENTOPS_DB``, else ``./agentops.db``.

A ``DbLocation`` prints without its password (``str``, ``repr`` and f-strings all give the
redacted form), so a message, a history row or a trace that names the history never holds it;
only ``url`` (handed to the driver) does. A leaf: it imports nothing of the store.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agentops.errors import UsageError

DEFAULT_DB_NAME = "agentops.db"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Connection parameters that are secrets when given in a URL's query (libpq reads them there too).
_SECRET_PARAMETERS = {"password", "sslpassword", "passfile"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class DbLocation:
    """A SQLite file (``path``) or a PostgreSQL database (``url``, password included)."""

    path: Path | None = None
    url: str | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    @property
    def shown(self) -> str:
        """How messages name it: the file path, or the URL without its password."""
        return redact(self.url) if self.url is not None else str(self.path)

    @property
    def host_port(self) -> str:
        """``host:port`` of a PostgreSQL URL (libpq's defaults where it names none)."""
        if self.url is None:
            return str(self.path)
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        host = parts.hostname or query.get("host") or os.environ.get("PGHOST") or "localhost"
        try:
            port = parts.port
        except ValueError:
            port = None
        return f"{host}:{port or query.get('port') or os.environ.get('PGPORT') or 5432}"

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"DbLocation({self.shown!r})"


def locate(db: str | Path | DbLocation | None) -> DbLocation:
    """``--db`` as given (None: ``$AGENTOPS_DB``, else ``./agentops.db``) as a location."""
    if isinstance(db, DbLocation):
        return db
    if db is None:
        db = os.environ.get("AGENTOPS_DB") or DEFAULT_DB_NAME
    if isinstance(db, Path):
        return DbLocation(path=db)
    text = db.strip()
    match = _SCHEME.match(text)
    if match is None:
        return DbLocation(path=Path(text))
    scheme = match.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        _check_postgres_url(text)
        return DbLocation(url=text)
    if scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy and Prefect write them.
        rest = text[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) == 1:
            raise UsageError(
                f"--db {redact(text)}: a SQLite URL is sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (three or four slashes)"
            )
        return DbLocation(path=Path(rest[1:]))
    raise UsageError(
        f"--db {redact(text)}: unknown scheme {scheme}://; give a file path, sqlite:///path "
        "or postgresql://user@host:5432/dbname"
    )


def redact(url: str) -> str:
    """``url`` without a password, in its user part or its query (``?password=``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://…"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    query = urlencode(
        [(k, "***" if k in _SECRET_PARAMETERS else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _check_postgres_url(url: str) -> None:
    parts = urlsplit(url)
    try:
        _ = parts.port
    except ValueError:
        raise UsageError(
            f"--db {redact(url)}: the port is not a number; write postgresql://user@host:5432/dbname"
        ) from None
    if not parts.path.strip("/") and "dbname" not in dict(parse_qsl(parts.query)):
        raise UsageError(
            f"--db {redact(url)} names no database; write postgresql://user@host:5432/dbname"
        )
