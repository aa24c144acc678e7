"""Building workflows that talk to the local OpenAI-compatible test server."""

from __future__ import annotations

from typing import Any

import yaml

from agentops.testing.server import OpenAITestServer
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text

TEST_KEY_ENV = "AGENTOPS_TEST_KEY"
TEST_KEY = "sk-test-0123456789abcdef"


def workflow_on(
    server: OpenAITestServer,
    agents: list[dict[str, Any]],
    *,
    policies: dict[str, Any] | None = None,
    prices: dict[str, Any] | None = None,
    name: str = "test_flow",
    **extra: Any,
) -> LoadedWorkflow:
    """A workflow whose agents all call ``server`` through the openai provider."""
    document: dict[str, Any] = {
        "name": name,
        "policies": {"backoff": {"base": 0.01, "max": 0.05}, **(policies or {})},
        "providers": {"test": {"base_url": server.base_url, "api_key_env": TEST_KEY_ENV}},
        "agents": [
            {"model": "gpt-4o-mini", "provider": "test", "task": f"do {a['name']}", **a}
            for a in agents
        ],
        **extra,
    }
    if prices is not None:
        document["prices"] = prices
    return load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="test_flow.yaml")


class EventLog:
    """A subscriber that keeps every event, with the monotonic time it arrived."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
