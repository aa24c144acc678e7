"""Databases lent to many threads at once (``stores.open_pool``, what the web view reads and
decides through), on both stores: each thread's borrow is its own, a read-only pool writes
nothing; on PostgreSQL the threads share at most ``size`` connections (psycopg_pool), a slow
query holds up only its own borrower, and an unreachable server is named at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from agentops.errors import StoreError
from agentops.runtime.events import RunStatus
from agentops.store.budgets import budget_statuses, set_budget
from agentops.store.database import DatabasePool
from agentops.store.sqlite_reader import SqliteHistoryReader
from agentops.store.stores import open_database, open_pool, reader_pool
from tests.support.postgres import PASSWORD, free_port
from tests.support.store import is_postgres, record, succeeded, workflow_of


def recorded(db: str, runs: int = 3) -> None:
    with open_database(db) as store:
        for n in range(runs):
            record(store, workflow_of(f"w{n}", ["a", "b"]), [succeeded("a", "x")], RunStatus.FAILED)


def test_many_threads_read_at_once_each_on_its_own_borrow(db: str) -> None:
    recorded(db)
    readers = reader_pool(db, size=3)
    start = threading.Barrier(12)

    def read(_: int) -> tuple[list[str], object]:
        start.wait(timeout=30)
        with readers.reader() as reader:
            names = [r.workflow for r in reader.workflow_runs()]
            assert isinstance(reader, SqliteHistoryReader)
            store = reader.store
            session = (
                store.read("SELECT pg_backend_pid()")[0][0]
                if is_postgres(db)
                else id(store.connection)
            )
        return names, session

    try:
        with ThreadPoolExecutor(12) as threads:
            results = list(threads.map(read, range(12)))
    finally:
        readers.close()
    assert [names for names, _ in results] == [["w2", "w1", "w0"]] * 12
    sessions = {session for _, session in results}
    if is_postgres(db):
        assert 1 <= len(sessions) <= 3  # twelve threads, three connections at most
    else:
        assert len(sessions) == 12  # a SQLite connection per thread


def test_a_read_only_pool_writes_nothing_and_a_writing_one_does(db: str) -> None:
    recorded(db, runs=1)
    read_only = open_pool(db, read_only=True, size=2)
    try:
        with read_only.borrow() as store, pytest.raises(StoreError, match="read-only"):
            set_budget(store, "team", 5.0)
    finally:
        read_only.close()
    writing = open_pool(db, read_only=False, size=2, eager=False)
    try:
        with ThreadPoolExecutor(4) as threads:
            list(threads.map(lambda n: _set(writing, f"b{n}"), range(8)))
    finally:
        writing.close()
    with open_database(db) as store:
        assert [s.name for s in budget_statuses(store)] == [f"b{n}" for n in range(8)]


def _set(pool: DatabasePool, name: str) -> None:
    with pool.borrow() as store:
        set_budget(store, name, 1.0)


def test_a_slow_query_holds_up_only_its_own_borrower(postgres_url: str) -> None:
    recorded(postgres_url, runs=1)
    pool = open_pool(postgres_url, read_only=True, size=2)
    slow_started = threading.Event()

    def slow() -> None:
        with pool.borrow() as store:
            slow_started.set()
            store.read("SELECT pg_sleep(3)")

    try:
        with ThreadPoolExecutor(1) as threads:
            sleeping = threads.submit(slow)
            assert slow_started.wait(timeout=30)
            began = time.monotonic()
            with pool.borrow() as store:
                assert store.read("SELECT count(*) FROM workflow_runs")[0][0] == 1
            assert time.monotonic() - began < 2.0 and not sleeping.done()
            sleeping.result(timeout=30)
    finally:
        pool.close()


def test_an_unreachable_server_is_named_when_the_pool_opens() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://agentops:{PASSWORD}@127.0.0.1:{port}/history"
    began = time.monotonic()
    with pytest.raises(StoreError) as raised:
        reader_pool(url, size=2)
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach the history database postgresql://agentops@127.0.0.1:{port}/history "
        f"at 127.0.0.1:{port} ("
    )
    assert PASSWORD not in message and "\n" not in message
    assert time.monotonic() - began < 5.0  # said at once, not after the pool's retries
