"""API keys never reach the history database, the output or the logs.

Runs that succeed and runs refused with 401 go through real ``agentops`` processes
with every kind of key set; then the database files (with WAL and journal) and
everything every command printed (warnings and logs go to stderr) are searched for each key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentops.testing.server import Fault, OpenAITestServer
from tests.support.reliability import (
    KEY,
    KEY_ENV,
    agent_of,
    cli_env,
    database_bytes,
    run_agentops,
    write_workflow,
)

OPENAI_KEY = "sk-openai-5ecret-key-never-print-me-1234"
AZURE_KEY = "azure-5ecret-key-never-print-me-5678"
SECRETS = (KEY, OPENAI_KEY, AZURE_KEY)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def test_keys_never_reach_the_database_or_any_output(
    tmp_path: Path, server: OpenAITestServer
) -> None:
    env = cli_env(
        OPENAI_API_KEY=OPENAI_KEY,
        OPENAI_BASE_URL=server.base_url,
        AZURE_GPT5_KEY=AZURE_KEY,
        AZURE_GPT5_ENDPOINT=server.azure_endpoint,
        AZURE_GPT5_VERSION="2024-02-15-preview",
    )
    agents = [
        {"name": "named"},  # the workflow's own provider, keyed by KEY_ENV
        {"name": "builtin", "provider": "openai", "depends_on": "named"},  # OPENAI_API_KEY
        {
            "name": "azure",
            "provider": "azure",
            "model": "gpt5-deployment",
            "depends_on": "named",
        },  # AZURE_GPT5_KEY
    ]
    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, agents, policies={"retries": 1})
    db = tmp_path / "history.db"
    printed: list[str] = []

    def agentops(*args: str | Path, code: int = 0) -> str:
        completed = run_agentops(*args, "--db", db, env=env)
        output = completed.stdout + completed.stderr
        printed.append(output)
        assert completed.returncode == code, (args, output)
        return output

    agentops("run", flow)
    agentops("run", flow, "--json")
    server.inject(Fault(kind="status", status=401), times=1)
    assert KEY_ENV in agentops(
        "run", flow, code=1
    )  # the error names the variable to fix, not its value
    for agent, variable in ((agents[1], "OPENAI_API_KEY"), (agents[2], "AZURE_GPT5_KEY")):
        alone = write_workflow(
            tmp_path / f"{agent['name']}.yaml", server.base_url, [{**agent, "depends_on": None}]
        )
        server.inject(Fault(kind="status", status=401), times=1)
        assert variable in agentops("run", alone, code=1)
    for command in (
        ("list-workflow-runs",),
        ("list-workflow-runs", "--json"),
        ("list-runs",),
        ("list-runs", "--json"),
        ("show-workflow-run", "1"),
        ("show-workflow-run", "1", "--json"),
        ("show-workflow-run", "3"),
        ("show-workflow-run", "3", "--json"),
        ("show-workflow-run", "4", "--json"),
        ("show-workflow-run", "5", "--json"),
    ):
        agentops(*command)
    agentops("resume", "3")

    # The keys were really in use: the server received them.
    authorizations = {r.headers.get("authorization", "") for r in server.requests}
    assert f"Bearer {KEY}" in authorizations and f"Bearer {OPENAI_KEY}" in authorizations
    assert AZURE_KEY in {r.headers.get("api-key", "") for r in server.requests}
    assert {agent_of(r.body) for r in server.requests} == {"named", "builtin", "azure"}

    stored = database_bytes(db)
    assert b"named" in stored  # the scan sees the rows
    for secret in SECRETS:
        assert secret.encode() not in stored, f"{secret} is in the database"
        assert secret[-12:].encode() not in stored
        for text in printed:
            assert secret not in text and secret[-12:] not in text, text
