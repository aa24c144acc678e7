"""One table of provider kinds: the YAML's ``type:`` choices, the built-in names and each
kind's capabilities come from it, and every provider declares what it can do."""

from __future__ import annotations

import typing

from agentops.providers.fake import FakeProvider
from agentops.providers.kinds import PROVIDER_KINDS
from agentops.providers.local import LocalProvider
from agentops.runtime.provider import Capabilities
from agentops.workflow.provider_kinds import BUILTIN_PROVIDERS, ProviderKind
from agentops.workflow.spec import ProviderSpec
from tests.support.provider import agent, registry


def test_the_table_is_the_only_list_of_kinds() -> None:
    assert set(typing.get_args(ProviderKind)) == set(PROVIDER_KINDS) == set(BUILTIN_PROVIDERS)
    annotation = ProviderSpec.model_fields["type"].annotation
    assert set(typing.get_args(annotation)) == set(PROVIDER_KINDS)


def test_the_local_model_declares_it_cannot_call_tools() -> None:
    local = PROVIDER_KINDS["local"]
    assert LocalProvider.capabilities == local
    assert local.lacks(tools=True) == ["tool calls"]
    assert "chat template" in local.limits
    assert PROVIDER_KINDS["openai"].lacks(tools=True, json_schema=True) == []


def test_the_registry_reports_capabilities_of_what_serves_each_route() -> None:
    built = registry([{"name": "a", "provider": "openai"}], env={"OPENAI_API_KEY": "sk-test"})
    assert built.capabilities(built.route(agent("a", provider="openai"))).tools
    plain = FakeProvider(capabilities=Capabilities(tools=False))
    overridden = registry([{"name": "a"}], override=plain)
    assert not overridden.capabilities(overridden.route(agent("a"))).tools
