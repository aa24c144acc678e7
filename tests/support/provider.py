"""Building workflows, registries and requests for the provider tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agentops.providers.registry import ProviderRegistry
from agentops.runtime.events import Usage
from agentops.runtime.provider import ChatRequest, ChatResponse, Message, Provider
from agentops.workflow.spec import Agent, Workflow

TEST_KEY = "sk-provider-test-SECRET-0123456789abcdef"
API_VERSION = "2024-10-21"


def workflow(agents: list[dict[str, Any]], providers: dict[str, Any] | None = None) -> Workflow:
    return Workflow.model_validate(
        {
            "name": "providers_test",
            "providers": providers or {},
            "agents": [{"model": "gpt-4o-mini", "task": f"do {a['name']}", **a} for a in agents],
        }
    )


def registry(
    agents: list[dict[str, Any]] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    providers: dict[str, Any] | None = None,
    **options: Any,
) -> ProviderRegistry:
    return ProviderRegistry(
        workflow(agents or [{"name": "a"}], providers), env=env or {}, **options
    )


def agent(name: str = "a", model: str = "gpt-4o-mini", **fields: Any) -> Agent:
    return Agent.model_validate({"name": name, "model": model, "task": "t", **fields})


def request(
    model: str = "gpt-4o-mini",
    text: str = "Say hello to the world",
    *,
    max_tokens: int = 16,
    system: str | None = None,
    **fields: Any,
) -> ChatRequest:
    messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    return ChatRequest(model=model, messages=tuple(messages), max_tokens=max_tokens, **fields)


def sketch_azure_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "AZURE_GPT5_KEY": TEST_KEY,
        "AZURE_GPT5_ENDPOINT": endpoint,
        "AZURE_GPT5_VERSION": API_VERSION,
        **extra,
    }


class Outcome:
    """What one ``complete`` call produced: a response or an error, and the streamed pieces."""

    def __init__(
        self, response: ChatResponse | None, error: BaseException | None, pieces: list[str]
    ) -> None:
        self.response = response
        self.error = error
        self.pieces = pieces

    @property
    def text(self) -> str:
        assert self.response is not None, f"the call failed: {self.error!r}"
        return self.response.text

    @property
    def usage(self) -> Usage:
        assert self.response is not None, f"the call failed: {self.error!r}"
        return self.response.usage


async def complete(provider: Provider, chat: ChatRequest) -> Outcome:
    pieces: list[str] = []
    try:
        response = await provider.complete(chat, pieces.append)
    except Exception as error:
        return Outcome(None, error, pieces)
    return Outcome(response, None, pieces)


def complete_once(
    registry: ProviderRegistry, agent_spec: Agent, chat: ChatRequest | None = None
) -> Outcome:
    """Route ``agent_spec``, build its provider, make one call and close the clients."""

    async def run() -> Outcome:
        route = registry.route(agent_spec)
        try:
            return await complete(registry.get(route), chat or request(route.model))
        finally:
            await registry.aclose()

    return asyncio.run(run())
