"""The history commands start fast: neither ``--help`` nor a real answer imports the
provider SDK, the price data, the local model, OpenTelemetry or the web stack (checked in a fresh
interpreter, on either store); only ``agentops ui`` itself loads the web stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agentops.runtime.events import RunStatus
from agentops.store.stores import open_database
from tests.support.postgres import PostgresServer
from tests.support.store import record, succeeded, workflow_of

HEAVY = (
    "openai",
    "genai_prices",
    "llama_cpp",
    "mcp",
    "opentelemetry",
    "starlette",
    "uvicorn",
    "jinja2",
    "sse_starlette",
    "grandalf",
)

# Runs ``agentops ARGS`` through the console entry point, then reports what was imported.
PROBE = f"""
import json, sys
sys.argv = ["agentops", *json.loads(sys.argv[1])]
from agentops.cli.app import main
try:
    main()
except SystemExit as exit_:
    code = exit_.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {set(HEAVY)!r})
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One recorded run, in a SQLite file, then in a PostgreSQL database (once per module:
    the commands only read it)."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        location = server.url(server.create_database())
    else:
        location = str(tmp_path_factory.mktemp("imports") / "agentops.db")
    with open_database(location) as store:
        record(store, workflow_of("flow", ["a"]), [succeeded("a", "done")], RunStatus.SUCCEEDED)
    return location


READING = [
    ["list-runs"],
    ["list-runs", "--json"],
    ["show-runs", "--workflow", "flow"],
    ["list-workflow-runs"],
    ["show-workflow-run", "1"],
    ["show-run", "1", "--json"],
    ["costs", "--by", "model"],
]


@pytest.mark.parametrize(
    "args", [["--help"], ["list-runs", "--help"], ["ui", "--help"]], ids=" ".join
)
def test_help_does_not_import_heavy_modules(args: list[str]) -> None:
    assert_light(args)


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_history_commands_do_not_import_heavy_modules(db: str, args: list[str]) -> None:
    assert_light([*args, "--db", db])


def assert_light(args: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip(), "the command printed nothing"
    assert report["heavy"] == [], f"{' '.join(args)} imported {report['heavy']}"
