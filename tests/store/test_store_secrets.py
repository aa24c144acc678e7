"""API keys never reach the history database: a real run over HTTP (127.0.0.1) with keys in
the environment, one call refused with 401, then the database's bytes are searched."""

from __future__ import annotations

from typing import Any

import pytest

import agentops
from agentops.runtime.events import AgentStatus
from agentops.testing.server import Fault, OpenAITestServer
from tests.support.engine import TEST_KEY_ENV, workflow_on
from tests.support.store import stored_bytes

KEY = "sk-store-test-5ecret-key-0123456789abcdef"
OTHER_KEY = "sk-openai-unused-5ecret-fedcba9876543210"


def test_no_key_or_authorization_header_is_stored(
    server: OpenAITestServer, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_KEY_ENV, KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OTHER_KEY)
    server.inject(
        Fault(kind="status", status=401),
        times=1,
        match=lambda body: "refused" in str(body["messages"]),
    )
    agents: list[dict[str, Any]] = [
        {"name": "writer"},
        {"name": "refused", "task": "refused step", "retries": 0},
    ]
    result = agentops.run(workflow_on(server, agents), db=db)

    assert result.agents["writer"].status is AgentStatus.SUCCEEDED
    assert result.agents["refused"].status is AgentStatus.FAILED
    assert any(
        r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests
    )  # the key was used
    stored = stored_bytes(db)
    assert (
        b"writer" in stored and TEST_KEY_ENV.encode() in stored
    )  # rows and the 401's hint are there
    for secret in (KEY, OTHER_KEY):
        for fragment in (secret, secret[-16:], secret[:16]):
            assert fragment.encode() not in stored, fragment
    assert b"Bearer " not in stored
