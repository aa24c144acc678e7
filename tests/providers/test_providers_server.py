"""The OpenAI-compatible test server itself: replies, records, faults, load, and its command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from typing import Any

import aiohttp
import pytest

from agentops.testing.server import Fault, OpenAITestServer

Body = dict[str, Any]


def chat_body(text: str = "hello there", *, model: str = "m", **fields: Any) -> Body:
    return {"model": model, "messages": [{"role": "user", "content": text}], **fields}


async def post(
    url: str, body: Body, session: aiohttp.ClientSession | None = None
) -> tuple[int, str]:
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(url, json=body) as response:
            return response.status, await response.text()
    finally:
        if own:
            await session.close()


def post_sync(url: str, body: Body) -> tuple[int, str]:
    return asyncio.run(post(url, body))


def sse_payloads(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_a_json_reply_is_deterministic_and_sized_by_max_tokens() -> None:
    with OpenAITestServer(reply_tokens=20) as server:
        status, text = post_sync(
            f"{server.base_url}/chat/completions", chat_body("one two three", max_tokens=6)
        )
        again = post_sync(
            f"{server.base_url}/chat/completions", chat_body("one two three", max_tokens=6)
        )
    assert status == 200
    answer = json.loads(text)
    content = answer["choices"][0]["message"]["content"]
    assert content == "reply from m to: one two"
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert json.loads(again[1])["choices"] == answer["choices"]
    assert server.requests[0].usage == answer["usage"] and server.requests[0].status == 200


def test_a_server_told_not_to_keep_requests_answers_and_keeps_none() -> None:
    with OpenAITestServer(keep_requests=False) as server:
        status, text = post_sync(f"{server.base_url}/chat/completions", chat_body(max_tokens=2))
        assert status == 200 and json.loads(text)["usage"]["completion_tokens"] == 2
        assert server.requests == []
        server.keep_requests = True
        post_sync(f"{server.base_url}/chat/completions", chat_body("kept"))
        assert [r.body["messages"][0]["content"] for r in server.requests] == ["kept"]


def test_replies_pad_to_reply_tokens_and_a_hook_can_replace_them() -> None:
    with OpenAITestServer(reply_tokens=12) as server:
        _, text = post_sync(f"{server.base_url}/chat/completions", chat_body("hi"))
        assert len(json.loads(text)["choices"][0]["message"]["content"].split()) == 12
        server.reply = lambda body: f"echo {body['messages'][0]['content']}"
        _, text = post_sync(f"{server.base_url}/chat/completions", chat_body("hi"))
        assert json.loads(text)["choices"][0]["message"]["content"] == "echo hi"


def test_a_stream_ends_with_usage_only_when_asked_and_then_done() -> None:
    with OpenAITestServer(reply_tokens=5, chunk_words=2) as server:
        _, with_usage = post_sync(
            f"{server.base_url}/chat/completions",
            chat_body(stream=True, stream_options={"include_usage": True}),
        )
        _, without = post_sync(f"{server.base_url}/chat/completions", chat_body(stream=True))
    events = sse_payloads(with_usage)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == (
        "reply from m to: hello"
    )
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert not any("usage" in json.loads(e) for e in sse_payloads(without)[:-1])
    assert server.requests[1].usage is None


def test_the_azure_route_is_recorded_with_deployment_and_version() -> None:
    with OpenAITestServer() as server:
        url = f"{server.azure_endpoint}/openai/deployments/dep-1/chat/completions?api-version=2024-10-21"
        status, text = post_sync(
            url, {"messages": [{"role": "user", "content": "x"}], "max_tokens": 4}
        )
    assert status == 200
    assert json.loads(text)["choices"][0]["message"]["content"].startswith("reply from dep-1")
    recorded = server.requests[0]
    assert recorded.path == "/openai/deployments/dep-1/chat/completions"
    assert recorded.query == {"api-version": "2024-10-21"}
    assert "model" not in recorded.body  # the body is recorded as sent


def test_faults_are_consumed_in_order_and_may_match_requests() -> None:
    with OpenAITestServer() as server:
        url = f"{server.base_url}/chat/completions"
        server.inject(
            Fault(status=503), times=2, match=lambda body: "flaky" in body["messages"][0]["content"]
        )
        statuses = [
            post_sync(url, chat_body(text))[0] for text in ("steady", "flaky", "flaky", "flaky")
        ]
    assert statuses == [200, 503, 503, 200]
    assert [r.fault for r in server.requests] == [None, Fault(status=503), Fault(status=503), None]
    assert server.faults_injected == 2


def test_status_faults_carry_retry_after_quota_and_codes() -> None:
    with OpenAITestServer() as server:
        url = f"{server.base_url}/chat/completions"
        server.inject(Fault(status=429, retry_after=0.25))
        server.inject(Fault(status=429, quota=True))
        server.inject(Fault(status=400, code="content_filter"))

        async def three() -> list[tuple[int, Body, dict[str, str]]]:
            results = []
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    async with session.post(url, json=chat_body()) as response:
                        results.append(
                            (response.status, await response.json(), dict(response.headers))
                        )
            return results

        (rate, rate_body, rate_headers), (quota, quota_body, _), (bad, bad_body, _) = asyncio.run(
            three()
        )
    assert (
        rate == 429
        and rate_headers["retry-after-ms"] == "250"
        and rate_headers["Retry-After"] == "1"
    )
    assert rate_body["error"]["code"] == "rate_limit_exceeded"
    assert quota == 429 and quota_body["error"]["code"] == "insufficient_quota"
    assert bad == 400 and bad_body["error"]["code"] == "content_filter"


def test_malformed_and_truncated_answers() -> None:
    with OpenAITestServer() as server:
        url = f"{server.base_url}/chat/completions"
        server.inject(Fault(kind="malformed"))
        _, text = post_sync(url, chat_body())
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        server.inject(Fault(kind="truncate"))
        _, streamed = post_sync(url, chat_body(stream=True))
    events = sse_payloads(streamed)
    assert events and "[DONE]" not in events
    assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events)


def test_a_dropped_connection_gets_no_response() -> None:
    with OpenAITestServer() as server:
        server.inject(Fault(kind="drop"))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            post_sync(f"{server.base_url}/chat/completions", chat_body())
    assert server.requests[0].status is None and server.requests[0].finished_at is not None


def test_random_faults_are_reproducible_from_the_seed() -> None:
    def kinds(seed: int) -> list[str | None]:
        with OpenAITestServer(seed=seed) as server:
            server.fault_rate = 0.5

            async def burst() -> None:
                async with aiohttp.ClientSession() as session:
                    for i in range(30):
                        with contextlib.suppress(aiohttp.ClientError):  # drops are among the faults
                            await post(
                                f"{server.base_url}/chat/completions", chat_body(f"n{i}"), session
                            )

            asyncio.run(burst())
        return [r.fault.kind if r.fault else None for r in server.requests]

    first = kinds(7)
    assert first == kinds(7)
    assert 5 < sum(k is not None for k in first) < 25
    assert {k for k in first if k} <= {"status", "drop", "truncate"}


def test_latency_may_be_a_function_of_the_request() -> None:
    seen: list[str] = []

    def latency(body: Body) -> float:
        seen.append(body["model"])
        return 0.0

    with OpenAITestServer(latency=latency) as server:
        post_sync(f"{server.base_url}/chat/completions", chat_body(model="slow-agent"))
    assert seen == ["slow-agent"]


def test_a_thousand_concurrent_requests_are_served_together() -> None:
    count = 1000
    # Each answer waits 3 s: far longer than 1,000 connections take to open even on a loaded
    # machine (CI once spread them over about 0.8 s, when the wait was 0.3 s), yet a server
    # that served them one by one would take 3,000 s.
    with OpenAITestServer(latency=3.0) as server:

        async def flood() -> list[int]:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                answers = await asyncio.gather(
                    *(
                        post(f"{server.base_url}/chat/completions", chat_body(f"n{i}"), session)
                        for i in range(count)
                    )
                )
            return [status for status, _ in answers]

        statuses = asyncio.run(flood())
        spans = sorted((r.started_at, r.finished_at or r.started_at) for r in server.requests)
    assert statuses == [200] * count and len(spans) == count
    # Most requests were in the server at once: nothing serialised them.
    last_start = max(start for start, _ in spans)
    assert sum(1 for _, end in spans if end > last_start) > count // 2


def test_the_command_line_prints_its_url_and_serves_until_stopped() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agentops.testing.server", "--port", "0", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        status, text = post_sync(f"{base_url}/chat/completions", chat_body(max_tokens=3))
        assert status == 200 and json.loads(text)["usage"]["completion_tokens"] == 3
    finally:
        process.terminate()
        assert process.wait(10) == 0
