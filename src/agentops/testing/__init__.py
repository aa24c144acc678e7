"""Testing aids shipped with the package.

``agentops.testing.server.OpenAITestServer``: a real OpenAI-compatible HTTP
server on 127.0.0.1 that records requests and injects faults (429 with
Retry-After, 5xx, hangs, dropped connections, malformed or truncated answers),
for tests and benchmarks. It needs aiohttp, which ``openai[aiohttp]`` brings.

For unit-testing workflows without any HTTP, use ``agentops.FakeProvider``.
"""
