"""Which provider serves each agent, and one shared client per provider per run.

Resolution order for an agent (documented in the README): its ``provider:``
field; else a ``provider:model`` prefix (``openai:gpt-4o``, ``azure:my-deployment``,
``local:smollm2``); else Azure when the sketch's ``AZURE_GPT5_*`` variables are
set; else OpenAI when ``OPENAI_API_KEY`` is set; else a ConfigurationError
naming the variables to set and the ``local`` option.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..spec import Agent, Workflow
from .base import Provider, Route


class ProviderRegistry:
    """Routes agents and builds providers lazily, once each, for one run.

    ``override``: a Provider used for every agent (tests, ``FakeProvider``), or a
    mapping from provider name to Provider that takes precedence over building one.
    ``max_connections`` sizes each HTTP client's pool to the run's concurrency.
    """

    def __init__(
        self,
        workflow: Workflow,
        *,
        env: Mapping[str, str] | None = None,
        max_connections: int = 16,
        override: Provider | Mapping[str, Provider] | None = None,
    ) -> None:
        raise NotImplementedError  # implemented by the providers work

    def route(self, agent: Agent) -> Route:
        """Decide where ``agent`` goes; raises ConfigurationError. Imports no SDK."""
        raise NotImplementedError

    def get(self, route: Route) -> Provider:
        """The shared provider for ``route.provider``, built on first use."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close every client built."""
        raise NotImplementedError
