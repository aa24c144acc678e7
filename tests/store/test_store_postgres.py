"""What only the PostgreSQL store has: URL forms and their redaction, the SQL carried over
from SQLite's form, a newer database refused by name, an unreachable server named by host and
port, a read-only reader, the password from ``PGPASSWORD``, and text SQLite keeps but
PostgreSQL's text type cannot hold. (The rest of the store suite runs on both stores.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentops.errors import ConfigurationError, StoreError, UsageError
from agentops.runtime.events import RunStatus
from agentops.store.location import DbLocation, locate, redact
from agentops.store.migrations import MIGRATIONS
from agentops.store.postgres import translate
from agentops.store.stores import history_reader, open_database, open_read_only
from tests.support.postgres import PASSWORD, PostgresServer, free_port
from tests.support.store import execute, record, rows, succeeded, workflow_of


def test_db_values_name_a_file_or_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert locate("history.db") == DbLocation(path=Path("history.db"))
    assert locate(tmp_path / "h.db") == DbLocation(path=tmp_path / "h.db")
    assert locate("sqlite:///relative/h.db") == DbLocation(path=Path("relative/h.db"))
    assert locate("sqlite:////abs/h.db") == DbLocation(path=Path("/abs/h.db"))
    for url in ("postgresql://u@db.example:5432/team", "postgres://u:pw@db.example/team"):
        assert locate(url).is_postgres and locate(url).url == url
    monkeypatch.setenv("AGENTOPS_DB", "postgresql://u:pw@h:6543/team")
    assert locate(None).host_port == "h:6543" and locate(None).url is not None
    monkeypatch.delenv("AGENTOPS_DB")
    assert locate(None) == DbLocation(path=Path("agentops.db"))
    for bad, message in (
        ("mysql://u@h/db", r"unknown scheme mysql://; give a file path"),
        ("sqlite://h.db", r"sqlite:///relative/path\.db or sqlite:////absolute"),
        ("postgresql://u:secret@h:5432", r"names no database"),
        ("postgresql://u:secret@h:port/db", r"the port is not a number"),
    ):
        with pytest.raises(UsageError, match=message) as raised:
            locate(bad)
        assert "secret" not in str(raised.value)


def test_a_url_is_shown_without_its_password_wherever_it_is_printed() -> None:
    url = "postgresql://alice:s3cr%40t@db.example:5432/team?sslmode=require&password=other"
    location = locate(url)
    shown = "postgresql://alice@db.example:5432/team?sslmode=require&password=***"
    assert redact(url) == shown
    assert str(location) == f"{location}" == location.shown == shown
    assert "s3cr" not in repr(location) and "other" not in repr(location)
    assert location.url == url  # the driver still gets it


def test_the_history_sql_is_carried_to_postgresql() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c IS ? AND d LIKE '50%?'") == (
        "SELECT a FROM t WHERE b = %s AND c IS NOT DISTINCT FROM %s AND d LIKE '50%%?'"
    )
    assert translate("UPDATE t SET x = max(x, ?) WHERE id = ?") == (
        "UPDATE t SET x = greatest(x, %s) WHERE id = %s"
    )
    assert translate("SELECT group_concat(DISTINCT n.node) FROM runs n") == (
        "SELECT string_agg(DISTINCT n.node, ',') FROM runs n"
    )
    assert (
        translate("INSERT INTO runs (a) VALUES (?)")
        == "INSERT INTO runs (a) VALUES (%s) RETURNING id"
    )
    assert "RETURNING" not in translate("INSERT INTO _migrations (number) VALUES (?)")
    for migration in MIGRATIONS:  # no SQLite-only construct reaches the server
        for statement in migration.postgres_statements():
            assert "AUTOINCREMENT" not in statement and "GLOB" not in statement
            assert "strftime" not in statement and " REAL" not in statement


def test_a_database_from_a_newer_agentops_is_refused_by_name(postgres_url: str) -> None:
    open_database(postgres_url).close()
    execute(postgres_url, "INSERT INTO _migrations VALUES (?, 'future', 'now')", 99)
    shown = locate(postgres_url)
    newest = MIGRATIONS[-1].number
    for opening in (open_database, open_read_only):
        with pytest.raises(StoreError) as refused:
            opening(postgres_url)
        assert str(refused.value) == (
            f"history database {shown} was written by a newer agentops (its schema is at "
            f"migration 99; this agentops knows migrations up to {newest}); upgrade agentops, "
            "or point --db (or AGENTOPS_DB) at another database"
        )
        assert PASSWORD not in str(refused.value)


def test_an_unreachable_server_is_named_by_host_and_port() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://agentops:{PASSWORD}@127.0.0.1:{port}/history?connect_timeout=3"
    with pytest.raises(StoreError) as raised:
        open_database(url)
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach the history database postgresql://agentops@127.0.0.1:{port}/history"
        f"?connect_timeout=3 at 127.0.0.1:{port} ("
    )
    assert "check that the server is running" in message
    assert PASSWORD not in message and "\n" not in message


def test_a_wrong_password_is_one_line_without_it(postgres_server: PostgresServer) -> None:
    name = postgres_server.create_database()
    url = f"postgresql://agentops:wrong-{PASSWORD}@127.0.0.1:{postgres_server.port}/{name}"
    with pytest.raises(StoreError, match="password authentication failed") as raised:
        open_database(url)
    assert PASSWORD not in str(raised.value)


def test_the_password_may_come_from_pgpassword(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = postgres_server.create_database()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    url = postgres_server.url(name, password=False)
    with open_database(url) as store:
        record(store, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    assert [r.workflow for r in history_reader(url).workflow_runs()] == ["w"]


def test_the_read_only_reader_writes_nothing(postgres_url: str) -> None:
    with open_database(postgres_url) as store:
        record(store, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    reader = open_read_only(postgres_url)
    try:
        with pytest.raises(StoreError, match="read-only"):
            reader.write(lambda connection: None)
        with pytest.raises(StoreError, match="read-only transaction"):
            reader.connection.execute("DELETE FROM runs")
        assert reader.read("SELECT count(*) FROM runs")[0][0] == 1
    finally:
        reader.close()
    other = postgres_url.rsplit("/", 1)[0] + "/postgres"  # a database without our tables
    with pytest.raises(StoreError, match="not migrated to this agentops; open it once for writing"):
        open_read_only(other)
    assert rows(other, "SELECT to_regclass('runs') IS NULL")[0][0]  # and nothing was made


def test_text_postgresql_cannot_hold_is_stored_not_lost(postgres_url: str) -> None:
    with open_database(postgres_url) as store:
        record(store, workflow_of("w", ["a"]), [succeeded("a", "nul\x00here")], RunStatus.SUCCEEDED)
    assert rows(postgres_url, "SELECT output FROM runs")[0][0] == "nul\ufffdhere"


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "agentops.store.postgres", raising=False)
    with pytest.raises(ConfigurationError, match=r"pip install 'agentops\[postgres\]'") as raised:
        open_database("postgresql://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(raised.value)


def test_a_user_who_may_not_write_is_told_before_the_run(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    from agentops.store.sqlite_writer import SqliteHistoryWriter

    open_database(postgres_url).close()
    name = postgres_url.rsplit("/", 1)[1]
    execute(postgres_url, f"CREATE ROLE viewer_{name} LOGIN PASSWORD '{PASSWORD}'")
    execute(postgres_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO viewer_{name}")
    viewer = postgres_url.replace("//agentops:", f"//viewer_{name}:")
    with (
        open_database(viewer) as store,
        pytest.raises(StoreError, match=r"may not write to workflow_runs, runs, .*grant it"),
    ):
        SqliteHistoryWriter(store).check_recordable("w")
    with open_database(postgres_url) as store:  # the owner may; and nothing was written
        SqliteHistoryWriter(store).check_recordable("w")
    assert rows(postgres_url, "SELECT count(*) FROM workflow_runs")[0][0] == 0
    with open_database(postgres_url) as store:
        record(store, workflow_of("w", ["a"]), [succeeded("a", "ok")], RunStatus.SUCCEEDED)
    assert rows(postgres_url, "SELECT id FROM workflow_runs")[0][0] == 1  # no id used up
