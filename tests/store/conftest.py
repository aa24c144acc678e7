"""Every store test that is not about a SQLite file as such runs against both stores: its
``db`` is a new SQLite file, then a new PostgreSQL database (``postgres_url``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "agentops.db")
