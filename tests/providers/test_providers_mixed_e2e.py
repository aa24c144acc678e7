"""One workflow whose agents use Azure (the sketch's variables), an OpenAI-compatible
named endpoint and the in-process local model, run end to end through ``agentops.arun``."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

import agentops
from agentops.runtime.events import AgentStatus, RunStatus, WorkflowResult
from agentops.testing.server import OpenAITestServer
from agentops.workflow.loader import load_workflow_text
from tests.support.provider import TEST_KEY, sketch_azure_env

COMPATIBLE_KEY_ENV = "COMPAT_SERVER_KEY"
COMPATIBLE_KEY = "sk-compatible-0123456789"


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.01) as running:
        yield running


def run_mixed(server: OpenAITestServer, agents: list[dict[str, Any]]) -> WorkflowResult:
    document = {
        "name": "mixed_providers",
        "policies": {"max_tokens": 8, "retries": 0},
        "providers": {"compat": {"base_url": server.base_url, "api_key_env": COMPATIBLE_KEY_ENV}},
        "agents": agents,
    }
    loaded = load_workflow_text(yaml.safe_dump(document, sort_keys=False), filename="mixed.yaml")
    env = {
        **sketch_azure_env(server.azure_endpoint, AZURE_GPT5_DEPLOYMENT="team-gpt5"),
        COMPATIBLE_KEY_ENV: COMPATIBLE_KEY,
    }
    return asyncio.run(agentops.arun(loaded, env=env))


HTTP_AGENTS: list[dict[str, Any]] = [
    {
        "name": "planner",
        "model": "gpt-4o",
        "task": "Plan the trip.",
    },  # no provider named: the sketch's Azure
    {
        "name": "critic",
        "model": "llama3.2:1b",
        "provider": "compat",
        "depends_on": "planner",
        "task": "Criticise: {{ planner.output }}",
    },
]


def test_azure_and_an_openai_compatible_endpoint_in_one_workflow(server: OpenAITestServer) -> None:
    result = run_mixed(server, HTTP_AGENTS)
    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    planner, critic = result.agents["planner"], result.agents["critic"]
    assert (planner.provider, planner.model) == ("azure", "team-gpt5")
    assert (critic.provider, critic.model) == ("compat", "llama3.2:1b")
    azure_call, compatible_call = sorted(server.requests, key=lambda r: r.started_at)
    assert azure_call.path == "/openai/deployments/team-gpt5/chat/completions"
    assert azure_call.headers["api-key"] == TEST_KEY
    assert compatible_call.path == "/v1/chat/completions"
    assert compatible_call.headers["authorization"] == f"Bearer {COMPATIBLE_KEY}"
    assert compatible_call.body["model"] == "llama3.2:1b"
    assert planner.output and planner.output in compatible_call.body["messages"][-1]["content"]
    assert compatible_call.body["max_tokens"] == 8


@pytest.mark.local_model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)
def test_azure_compatible_and_local_agents_in_one_workflow(server: OpenAITestServer) -> None:
    agents = [
        *HTTP_AGENTS,
        {
            "name": "summary",
            "model": "local:smollm2",
            "depends_on": ["planner", "critic"],
            "task": "Summarise in five words: {{ critic.output }}",
        },
    ]
    result = run_mixed(server, agents)
    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    summary = result.agents["summary"]
    assert summary.status is AgentStatus.SUCCEEDED
    assert (summary.provider, summary.model) == ("local", "smollm2")
    assert summary.output and summary.output.strip()
    assert not summary.usage.estimated and 1 <= summary.usage.output_tokens <= 8
    assert summary.cost == 0.0
    assert len(server.requests) == 2  # the local agent made no HTTP call
