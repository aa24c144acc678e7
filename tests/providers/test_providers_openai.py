"""The openai provider (OpenAI, Azure, OpenAI-compatible) over real HTTP against the test server."""

from __future__ import annotations

import asyncio

import pytest

from agentops.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    MalformedResponseError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from agentops.providers.endpoints import Endpoint
from agentops.providers.openai import OpenAIProvider, retry_after
from agentops.runtime.provider import ChatRequest
from agentops.testing.server import Fault, OpenAITestServer, RecordedRequest
from tests.support import free_port
from tests.support.provider import (
    API_VERSION,
    TEST_KEY,
    Outcome,
    agent,
    complete,
    complete_once,
    registry,
    request,
    sketch_azure_env,
)


def openai_endpoint(server: OpenAITestServer) -> Endpoint:
    return Endpoint(
        name="test",
        kind="openai",
        api_key=TEST_KEY,
        key_source="TEST_KEY_VAR",
        base_url=server.base_url,
    )


def azure_endpoint(server: OpenAITestServer) -> Endpoint:
    return Endpoint(
        name="azure",
        kind="azure",
        api_key=TEST_KEY,
        key_source="AZURE_GPT5_KEY",
        azure_endpoint=server.azure_endpoint,
        api_version=API_VERSION,
    )


def call(endpoint: Endpoint, *requests_: ChatRequest, max_connections: int = 8) -> list[Outcome]:
    """Make the calls concurrently through one provider."""

    async def run() -> list[Outcome]:
        provider = OpenAIProvider(endpoint, max_connections=max_connections)
        try:
            return list(await asyncio.gather(*(complete(provider, r) for r in requests_)))
        finally:
            await provider.aclose()

    return asyncio.run(run())


def only_request(server: OpenAITestServer) -> RecordedRequest:
    assert len(server.requests) == 1, (
        "the SDK must make exactly one HTTP request per call (its retries are off)"
    )
    return server.requests[0]


# --- faults → error types --------------------------------------------------------------

FAULTS = [
    # fault, error type, retryable, status, retry_after
    (Fault(status=429, retry_after=0.25), RateLimitError, True, 429, 0.25),
    (
        Fault(status=429, retry_after=2, retry_after_format="seconds"),
        RateLimitError,
        True,
        429,
        2.0,
    ),
    (Fault(status=429, retry_after=1.5, retry_after_format="ms"), RateLimitError, True, 429, 1.5),
    (Fault(status=429), RateLimitError, True, 429, None),
    (Fault(status=429, quota=True), QuotaExhaustedError, False, 429, None),
    (Fault(status=500), ServerError, True, 500, None),
    (Fault(status=503, retry_after=3, retry_after_format="seconds"), ServerError, True, 503, 3.0),
    (Fault(status=408), ServerError, True, 408, None),
    (Fault(status=409), ServerError, True, 409, None),
    (Fault(status=401), AuthenticationError, False, 401, None),
    (Fault(status=403), AuthenticationError, False, 403, None),
    (Fault(status=404), ModelNotFoundError, False, 404, None),
    (Fault(status=400), BadRequestError, False, 400, None),
    (Fault(status=422), BadRequestError, False, 422, None),
    (Fault(status=400, code="content_filter"), ContentPolicyError, False, 400, None),
    (Fault(status=400, code="content_policy_violation"), ContentPolicyError, False, 400, None),
    (Fault(kind="drop"), ProviderConnectionError, True, None, None),
    (Fault(kind="malformed"), MalformedResponseError, True, None, None),
    (Fault(kind="truncate"), MalformedResponseError, True, None, None),
]


@pytest.mark.parametrize(
    ("fault", "kind", "retryable", "status", "delay"), FAULTS, ids=lambda v: repr(v)[:40]
)
@pytest.mark.parametrize("flavour", ["openai", "azure"])
def test_each_fault_becomes_the_right_error(
    server: OpenAITestServer,
    flavour: str,
    fault: Fault,
    kind: type[ProviderError],
    retryable: bool,
    status: int | None,
    delay: float | None,
) -> None:
    server.inject(fault)
    endpoint = openai_endpoint(server) if flavour == "openai" else azure_endpoint(server)
    (outcome,) = call(endpoint, request())
    error = outcome.error
    assert type(error) is kind, repr(error)
    assert isinstance(error, ProviderError)
    assert error.retryable is retryable
    assert error.status == status
    assert error.retry_after == delay
    assert TEST_KEY not in str(error)
    only_request(server)


def test_an_http_date_in_retry_after_becomes_seconds(server: OpenAITestServer) -> None:
    server.inject(Fault(status=429, retry_after=30, retry_after_format="date"))
    (outcome,) = call(openai_endpoint(server), request())
    assert isinstance(outcome.error, RateLimitError)
    assert outcome.error.retry_after == pytest.approx(30, abs=2)


def test_retry_after_parsing_prefers_milliseconds_and_survives_garbage() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    assert (
        retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    )  # a date in the past
    assert retry_after({}) is None


def test_a_hanging_server_is_a_timeout(server: OpenAITestServer) -> None:
    server.inject(Fault(kind="hang"))  # until the client gives up
    (outcome,) = call(openai_endpoint(server), request(timeout=0.3))
    assert type(outcome.error) is ProviderTimeoutError
    assert outcome.error.retryable
    only_request(server)


def test_a_refused_connection_names_the_endpoint() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    endpoint = Endpoint(
        name="nowhere", kind="openai", api_key=TEST_KEY, key_source="X", base_url=url
    )
    (outcome,) = call(endpoint, request())
    assert type(outcome.error) is ProviderConnectionError
    assert "nowhere" in str(outcome.error) and url in str(outcome.error)
    assert TEST_KEY not in str(outcome.error)


def test_authentication_errors_name_the_variable_to_fix(server: OpenAITestServer) -> None:
    server.inject(Fault(status=401))
    env = sketch_azure_env(server.azure_endpoint)
    outcome = complete_once(registry(env=env), agent(model="my-deployment"))
    assert isinstance(outcome.error, AuthenticationError)
    assert "set AZURE_GPT5_KEY" in str(outcome.error)


def test_not_found_names_the_deployment(server: OpenAITestServer) -> None:
    server.inject(Fault(status=404))
    (outcome,) = call(azure_endpoint(server), request("missing-deployment"))
    assert isinstance(outcome.error, ModelNotFoundError)
    assert "deployment 'missing-deployment'" in str(outcome.error)


def test_a_key_echoed_by_the_server_is_scrubbed_from_every_message(
    server: OpenAITestServer,
) -> None:
    for status in (400, 401, 404, 429, 500):
        server.inject(Fault(status=status, message=f"Incorrect API key provided: {TEST_KEY}."))
    outcomes = call(openai_endpoint(server), *(request() for _ in range(5)), max_connections=1)
    assert len(outcomes) == 5
    for outcome in outcomes:
        assert isinstance(outcome.error, ProviderError)
        assert "Incorrect API key provided" in str(outcome.error)
        assert TEST_KEY not in str(outcome.error) and TEST_KEY not in repr(outcome.error)


# --- what is sent --------------------------------------------------------------------------


def test_openai_sends_model_messages_limits_and_a_bearer_key(server: OpenAITestServer) -> None:
    chat = request(
        "gpt-4o-mini", "Name three rivers.", system="Be brief.", max_tokens=12, temperature=0.3
    )
    (outcome,) = call(openai_endpoint(server), chat)
    assert outcome.error is None
    sent = only_request(server)
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert "api-key" not in sent.headers
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name three rivers."},
    ]
    assert sent.body["max_tokens"] == 12
    assert sent.body["temperature"] == 0.3
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}


def test_temperature_is_left_to_the_server_when_unset(server: OpenAITestServer) -> None:
    call(openai_endpoint(server), request())
    assert "temperature" not in only_request(server).body


def test_azure_puts_the_deployment_in_the_path_with_api_version_and_api_key_header(
    server: OpenAITestServer,
) -> None:
    (outcome,) = call(azure_endpoint(server), request("my-gpt5-deployment"))
    assert outcome.error is None
    sent = only_request(server)
    assert sent.path == "/openai/deployments/my-gpt5-deployment/chat/completions"
    assert sent.query["api-version"] == API_VERSION
    assert sent.headers["api-key"] == TEST_KEY
    assert "authorization" not in sent.headers
    assert outcome.text.startswith("reply from my-gpt5-deployment")


def test_the_sketch_variables_reach_azure_with_the_deployment_variable(
    server: OpenAITestServer,
) -> None:
    env = sketch_azure_env(server.azure_endpoint, AZURE_GPT5_DEPLOYMENT="team-gpt5")
    outcome = complete_once(registry(env=env), agent(model="gpt-4o"))
    assert outcome.error is None
    sent = only_request(server)
    assert sent.path == "/openai/deployments/team-gpt5/chat/completions"
    assert sent.query["api-version"] == API_VERSION


def test_azure_standard_variables_work_too(server: OpenAITestServer) -> None:
    env = {
        "AZURE_OPENAI_API_KEY": TEST_KEY,
        "AZURE_OPENAI_ENDPOINT": server.azure_endpoint,
        "OPENAI_API_VERSION": "2025-01-01-preview",
    }
    outcome = complete_once(registry(env=env), agent(model="std-deployment"))
    assert outcome.error is None
    sent = only_request(server)
    assert sent.path == "/openai/deployments/std-deployment/chat/completions"
    assert sent.query["api-version"] == "2025-01-01-preview"
    assert sent.headers["api-key"] == TEST_KEY


def test_openai_base_url_points_the_default_provider_at_any_compatible_server(
    server: OpenAITestServer,
) -> None:
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.base_url}
    outcome = complete_once(registry(env=env), agent(model="openai:llama3.2:1b"))
    assert outcome.error is None
    sent = only_request(server)
    assert sent.body["model"] == "llama3.2:1b"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"


def test_a_keyless_named_endpoint_never_receives_the_openai_key(server: OpenAITestServer) -> None:
    env = {"OPENAI_API_KEY": TEST_KEY}
    reg = registry(
        [{"name": "a", "provider": "ollama"}],
        env=env,
        providers={"ollama": {"base_url": server.base_url}},
    )
    outcome = complete_once(reg, agent(model="smollm2:135m", provider="ollama"))
    assert outcome.error is None
    sent = only_request(server)
    assert TEST_KEY not in sent.headers["authorization"]
    assert sent.body["model"] == "smollm2:135m"


# --- streaming and usage --------------------------------------------------------------------


def test_text_streams_through_on_text_in_pieces() -> None:
    with OpenAITestServer(reply_tokens=12, chunk_words=1) as server:
        (outcome,) = call(openai_endpoint(server), request(max_tokens=16))
    assert len(outcome.pieces) == 12
    assert "".join(outcome.pieces) == outcome.text
    assert len(outcome.text.split()) == 12
    assert outcome.response is not None and outcome.response.finish_reason == "stop"


def test_reported_usage_is_used_as_is(server: OpenAITestServer) -> None:
    (outcome,) = call(openai_endpoint(server), request(text="one two three four", max_tokens=7))
    reported = only_request(server).usage
    assert reported is not None
    assert outcome.usage.input_tokens == reported["prompt_tokens"] == 4
    assert outcome.usage.output_tokens == reported["completion_tokens"] == 7
    assert not outcome.usage.estimated


def test_missing_usage_is_estimated_and_flagged() -> None:
    with OpenAITestServer(send_usage=False, reply_tokens=10) as server:
        (outcome,) = call(openai_endpoint(server), request(text="x" * 400, max_tokens=10))
        assert server.requests[0].usage is None
    assert outcome.usage.estimated
    assert outcome.usage.input_tokens == 100  # 400 bytes at about 4 bytes per token
    assert (
        0 < outcome.usage.output_tokens <= 10
    )  # never above max_tokens: the cost cap reserved that much


def test_an_error_raised_by_on_text_is_not_mistaken_for_a_provider_failure() -> None:
    def broken(piece: str) -> None:
        raise KeyError("a subscriber bug")

    with OpenAITestServer(chunk_words=1, reply_tokens=20) as server:

        async def run() -> Outcome:
            provider = OpenAIProvider(openai_endpoint(server), max_connections=1)
            try:
                with pytest.raises(KeyError, match="a subscriber bug"):
                    await provider.complete(request(), broken)
                return await complete(
                    provider, request(timeout=5)
                )  # the only pooled connection is free again
            finally:
                await provider.aclose()

        outcome = asyncio.run(run())
    assert outcome.error is None


def test_a_call_cancelled_mid_stream_gives_its_connection_back() -> None:
    with OpenAITestServer(chunk_words=1, chunk_delay=0.2, reply_tokens=20) as server:

        async def run() -> Outcome:
            provider = OpenAIProvider(openai_endpoint(server), max_connections=1)
            try:
                first_piece = asyncio.Event()
                task = asyncio.create_task(
                    provider.complete(request(), lambda _: first_piece.set())
                )
                await first_piece.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                server.chunk_delay = 0.0
                return await complete(
                    provider, request(timeout=5)
                )  # the only pooled connection is free again
            finally:
                await provider.aclose()

        outcome = asyncio.run(run())
    assert outcome.error is None and len(outcome.text.split()) == 16


# --- one shared client -----------------------------------------------------------------------


def test_the_connection_pool_is_sized_to_the_run_concurrency() -> None:
    with OpenAITestServer(latency=0.2) as server:
        outcomes = call(
            openai_endpoint(server), *(request(f"call {i}") for i in range(9)), max_connections=3
        )
        spans = [(r.started_at, r.finished_at or r.started_at) for r in server.requests]
    assert all(o.error is None for o in outcomes)
    in_flight = max(sum(1 for s, f in spans if s <= start < f) for start, _ in spans)
    assert in_flight == 3


def test_the_registry_builds_one_client_per_provider_and_closes_it(
    server: OpenAITestServer,
) -> None:
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.base_url}
    reg = registry([{"name": "a"}, {"name": "b"}], env=env, max_connections=5)

    async def run() -> tuple[bool, bool]:
        first, second = reg.get(reg.route(agent("a"))), reg.get(reg.route(agent("b")))
        assert isinstance(first, OpenAIProvider)
        outcomes = await asyncio.gather(complete(first, request()), complete(second, request()))
        assert all(o.error is None for o in outcomes)
        await reg.aclose()
        return first is second, first.client.is_closed()

    shared, closed = asyncio.run(run())
    assert shared and closed
