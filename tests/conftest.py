"""Per-test isolation: no provider credentials or OpenTelemetry settings leak in from the
machine, and history goes to a fresh SQLite file under the test's tmp_path unless a test
says otherwise. And the fixtures of more than one folder: ``server``, the OpenAI-compatible
test server with its defaults (a module wanting other settings defines its own), and
``postgres_url``, a new database on a PostgreSQL server the session starts itself
(``tests.support.postgres``), and ``db``, a test's history on each store in turn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import OpenAITestServer
from tests.support.postgres import PostgresServer, server_binaries, start_server

PROVIDER_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_VERSION",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_GPT5_KEY",
    "AZURE_GPT5_ENDPOINT",
    "AZURE_GPT5_VERSION",
    "AZURE_GPT5_DEPLOYMENT",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name in [
        n for n in os.environ if n.startswith("OTEL_")
    ]:  # a collector set up on this machine
        monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTOPS_DB", str(tmp_path / "agentops.db"))
    yield


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session, started on first use (about a second)."""
    if server_binaries() is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl) on this machine: "
            "apt-get install postgresql (.ci/run installs it)"
        )
    running = start_server()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of the session's server (its URL carries the password)."""
    return postgres_server.url(postgres_server.create_database())


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's history, once on each store: a new SQLite file, then a new PostgreSQL
    database (``postgres_url``). A test that is about a SQLite file as such takes
    ``tmp_path`` instead and says why in its docstring."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "agentops.db")
