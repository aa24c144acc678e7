"""How to reach one HTTP provider (``Endpoint``) and how it takes an output schema.

A leaf of ``providers``: the registry resolves endpoints from the workflow and the
environment, the OpenAI provider calls them, and tracing names where their calls
go. None of them needs another to know what an endpoint is, and importing this
module imports no SDK. The forms a schema may be sent in are named by the workflow
(``agentops.workflow.provider_kinds.ResponseFormatForm``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentops.workflow.provider_kinds import ResponseFormatForm

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class Endpoint:
    """How to reach one HTTP provider. ``key_source`` names where the key came from, for messages."""

    name: str
    kind: str  # "openai" | "azure"
    api_key: str = field(repr=False)
    key_source: str
    base_url: str | None = None  # the "openai" kind's base URL
    azure_endpoint: str | None = None  # the "azure" kind's resource endpoint
    api_version: str | None = None
    deployment: str | None = None  # Azure: sent instead of the agent's model
    response_format: ResponseFormatForm = "auto"  # providers.NAME.response_format

    @property
    def url(self) -> str:
        return (self.azure_endpoint if self.kind == "azure" else self.base_url) or ""


__all__ = ["DEFAULT_OPENAI_BASE_URL", "Endpoint"]
