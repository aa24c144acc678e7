"""A real OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks chat completions, as JSON and as SSE streams, on OpenAI's route and
on Azure's, records every request, and injects scripted or random faults. It
runs its own event loop in a background thread, so synchronous tests and the
code under test (on its own loop) can share it::

    from agentops.testing.server import Fault, OpenAITestServer

    with OpenAITestServer(latency=0.05) as server:
        server.base_url          # "http://127.0.0.1:PORT/v1"   (OpenAI and compatible clients)
        server.azure_endpoint    # "http://127.0.0.1:PORT"      (AsyncAzureOpenAI's azure_endpoint)
        server.inject(Fault(kind="status", status=429, retry_after=0.5), times=2)
        ...                      # run the code under test
        assert len(server.requests) == 3

Routes
    ``POST /v1/chat/completions`` (also ``/chat/completions``), Azure's
    ``POST /openai/deployments/{name}/chat/completions?api-version=...`` and
    ``GET /v1/models`` (a readiness probe).

Replies (deterministic)
    By default ``"reply from <model> to: <first 40 characters of the last user
    message>"``, padded with filler words or cut so that it has exactly
    ``min(max_tokens, reply_tokens)`` words: one word is one "token".
    ``prompt_tokens`` is the number of whitespace-separated words in all the
    messages. A ``reply`` hook (parsed body → text) replaces the text; its
    completion tokens are its words. Streams honour
    ``stream_options.include_usage``; ``send_usage=False`` never reports usage.

Structured output
    A request with ``response_format`` carrying a schema (OpenAI's
    ``{type: json_schema, json_schema: {schema}}`` or ``{type: json_object,
    schema}``) is answered, by default, with a JSON object built from the
    schema (``example_for_schema``: every property, strings named after their
    property, the first of an enum). The faults below make it misbehave.

Given answers
    ``answer_when(marker, value)``: a request whose messages contain ``marker``
    is answered with ``value`` (a string as it is, anything else as JSON), before
    any ``reply`` hook or schema example; the first marker added that matches
    wins. ``--answer MARKER=JSON`` does the same from the command line.
    ``answer_in_turn(marker, [v1, v2, ...])``: the first matching request gets ``v1``, the
    next ``v2``, and so on, the last one repeating (a critic that rejects, then approves);
    ``--answers MARKER=JSON_LIST`` from the command line.

Tool calls
    A ``reply`` hook may return a ``ScriptedReply(text, tool_calls=[...])``
    instead of text: each tool call is ``ScriptedToolCall(name, arguments)``
    (``arguments`` a dict, or JSON text sent as is, valid or not). Streams
    send them as ``delta.tool_calls`` (the name first, the arguments in two
    fragments), then ``finish_reason: "tool_calls"``; a JSON answer carries
    ``message.tool_calls``. ``call_tool_until(name, arguments, turns)`` is a
    ready hook: it asks for ``name`` until the conversation holds ``turns`` tool
    results, then answers ``"done after N tool results"``.

Knobs (constructor arguments, also plain attributes you may change while it runs)
    ``latency``: seconds before answering, a float or ``callable(body) -> float``
    (per-agent latencies, e.g. from a marker in the prompt); ``chunk_delay``:
    seconds between streamed chunks; ``chunk_words``: words per chunk;
    ``reply_tokens``; ``send_usage``; ``reply``.

Faults (``Fault.kind``), applied on every route after the latency
    ``status``   an HTTP error: ``status`` (default 500); ``retry_after`` seconds
                 sends ``retry-after-ms`` and ``Retry-After`` (``retry_after_format``:
                 ``both``, ``ms``, ``seconds`` or an HTTP ``date``); ``quota=True``
                 makes a 429 the ``insufficient_quota`` kind; ``code`` sets the
                 error code (e.g. ``content_filter`` on a 400), ``message`` its text.
    ``hang``     answer nothing for ``seconds`` (None: until the client gives up),
                 then answer normally.
    ``drop``     close the connection without any response.
    ``malformed`` a 200 whose JSON body (or SSE event) is not valid JSON.
    ``truncate`` stream a first chunk, then end the response cleanly without a
                 finish reason or ``[DONE]`` (a JSON request gets half a body).

    Answers that are well-formed responses but bad structured output (for
    requests with a schema; any reply hook's text is replaced too):
    ``invalid_json`` text that is not JSON; ``wrong_shape`` JSON that does not
    follow the schema; ``length`` the first half of a valid answer with
    ``finish_reason: "length"`` (cut off by max_tokens); ``refusal`` no content
    and ``message.refusal`` (OpenAI's way of declining); ``fenced`` the valid
    answer inside a ```json code fence.

    ``inject(fault, times=n, match=None)`` queues a fault for the next ``n``
    requests (that ``match(body)``, or ``server.fault_match`` when set);
    ``inject_for(predicate, **fault_fields)`` applies one to every matching
    request for ever; ``clear_faults()`` removes all. ``fault_rate = 0.3``
    additionally gives that share of requests a fault drawn by a seeded RNG
    from ``random_faults`` (default: 429 with a short Retry-After, 500, drop,
    truncated stream; add ``Fault(kind="hang", seconds=...)`` when your client
    has a short timeout).

Records
    ``server.requests``: one ``RecordedRequest`` per request, in arrival order,
    with ``path``, ``query``, ``headers`` (lowercase names), ``body`` (parsed
    JSON), ``started_at``/``finished_at`` (``time.monotonic()``), ``status``
    returned (None for a dropped connection), ``usage`` reported (None when
    none was) and the ``fault`` applied. ``faults_injected`` counts faults.
    ``keep_requests=False`` keeps none: a server that answers for hours, or
    a benchmark's hundreds of thousands of calls, would otherwise grow
    without bound, and each of the collector's full passes over the records
    would hold up every answer (for as long as a second in a benchmark's).

Also runnable: ``python -m agentops.testing.server --port 0 --latency 0.05``
prints its base URL on the first line of stdout and serves until killed
(``--call-tool NAME --tool-turns N`` scripts ``call_tool_until``).
Nothing is logged: it is built to take thousands of concurrent requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from agentops.runtime.structured import example_for_schema

Body = dict[str, Any]
Latency = float | Callable[[Body], float]
FaultKind = Literal[
    "status",
    "hang",
    "drop",
    "malformed",
    "truncate",
    "invalid_json",
    "wrong_shape",
    "length",
    "refusal",
    "fenced",
]
RetryAfterFormat = Literal["both", "ms", "seconds", "date"]

REPLY_PREFIX_CHARS = 40
_MAX_HANG = 3600.0


@dataclass(frozen=True)
class Fault:
    """One scripted failure; see the module docstring for each kind."""

    kind: FaultKind = "status"
    status: int | None = None
    retry_after: float | None = None
    retry_after_format: RetryAfterFormat = "both"
    quota: bool = False
    code: str | None = None
    message: str | None = None  # the error message sent (default: one like OpenAI's)
    seconds: float | None = None  # for hang; None: until the client disconnects


DEFAULT_RANDOM_FAULTS = (
    Fault(kind="status", status=429, retry_after=0.05),
    Fault(kind="status", status=500),
    Fault(kind="drop"),
    Fault(kind="truncate"),
)


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str = field(
        default_factory=dict
    )  # str: sent exactly (valid JSON or not)

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class ScriptedReply:
    """What a ``reply`` hook may return instead of text: text and the tool calls the "model" asks for."""

    text: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    finish_reason: str | None = None  # None: "tool_calls" with calls, else "stop"
    refusal: str | None = None  # sent as message.refusal (streamed: delta.refusal)


def tool_results(body: Body) -> int:
    """How many tool results the conversation in ``body`` holds."""
    return sum(1 for message in _messages(body) if message.get("role") == "tool")


def call_tool_until(
    name: str, arguments: dict[str, Any] | None = None, turns: int = 1
) -> Callable[[Body], str | ScriptedReply]:
    """A ``reply`` hook: ask for tool ``name`` until ``turns`` tool results are in, then answer."""

    def reply(body: Body) -> str | ScriptedReply:
        done = tool_results(body)
        if done >= turns:
            return f"done after {done} tool results"
        return ScriptedReply("", (ScriptedToolCall(name, dict(arguments or {})),))

    return reply


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Body
    started_at: float  # time.monotonic()
    finished_at: float | None = None
    status: int | None = None
    usage: dict[str, int] | None = None
    fault: Fault | None = None


@dataclass
class _Scripted:
    fault: Fault
    remaining: int | None  # None: for ever
    match: Callable[[Body], bool] | None = None


@dataclass
class _GivenAnswer:
    marker: str
    texts: list[str]  # answered in turn, the last one repeating
    used: int = 0


class OpenAITestServer:
    """See the module docstring. Safe to use from any thread."""

    def __init__(
        self,
        *,
        latency: Latency = 0.0,
        reply_tokens: int = 20,
        send_usage: bool = True,
        reply: Callable[[Body], str | ScriptedReply] | None = None,
        chunk_words: int = 4,
        chunk_delay: float = 0.0,
        port: int = 0,
        seed: int = 1234,
        keep_requests: bool = True,
    ) -> None:
        self.latency = latency
        self.reply_tokens = reply_tokens
        self.send_usage = send_usage
        self.reply = reply
        self.chunk_words = max(1, chunk_words)
        self.chunk_delay = chunk_delay
        self.fault_rate = 0.0
        self.random_faults: tuple[Fault, ...] = DEFAULT_RANDOM_FAULTS
        self.fault_match: Callable[[Body], bool] | None = None
        self.requests: list[RecordedRequest] = []
        self.keep_requests = keep_requests
        self.faults_injected = 0
        self.port = 0
        self._requested_port = port
        self._scripted: list[_Scripted] = []
        self._answers: list[_GivenAnswer] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- where it listens -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def azure_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- faults ----------------------------------------------------------------------

    def inject(
        self, fault: Fault, times: int = 1, match: Callable[[Body], bool] | None = None
    ) -> None:
        """The next ``times`` requests matching ``match`` (else ``fault_match``, else all) get ``fault``."""
        with self._lock:
            self._scripted.append(_Scripted(fault, times, match))

    def inject_for(self, predicate: Callable[[Body], bool], **fault: Any) -> None:
        """Every request whose body matches ``predicate`` gets ``Fault(**fault)``, for ever."""
        with self._lock:
            self._scripted.append(_Scripted(Fault(**fault), None, predicate))

    def answer_when(self, marker: str, value: Any) -> None:
        """Answer every request whose messages contain ``marker`` with ``value`` (JSON unless text)."""
        self.answer_in_turn(marker, [value])

    def answer_in_turn(self, marker: str, values: Sequence[Any]) -> None:
        """Answer the requests whose messages contain ``marker`` with ``values`` in turn, the
        last one repeating once they are used up."""
        if not values:
            raise ValueError("answer_in_turn needs at least one value")
        texts = [value if isinstance(value, str) else json.dumps(value) for value in values]
        with self._lock:
            self._answers.append(_GivenAnswer(marker, texts))

    def _given_answer(self, body: Body) -> str | None:
        with self._lock:
            if not self._answers:
                return None
            conversation = "\n".join(str(m.get("content") or "") for m in _messages(body))
            given = next((a for a in self._answers if a.marker in conversation), None)
            if given is None:
                return None
            text = given.texts[min(given.used, len(given.texts) - 1)]
            given.used += 1
            return text

    def clear_faults(self) -> None:
        with self._lock:
            self._scripted.clear()
            self.fault_rate = 0.0

    def _choose_fault(self, body: Body) -> Fault | None:
        with self._lock:
            for scripted in self._scripted:
                match = scripted.match or self.fault_match
                if match is not None and not match(body):
                    continue
                if scripted.remaining is None:
                    return scripted.fault
                if scripted.remaining > 0:
                    scripted.remaining -= 1
                    return scripted.fault
            if self.fault_rate and self.random_faults and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.random_faults)
        return None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> OpenAITestServer:
        self._thread = threading.Thread(target=self._serve, name="openai-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the test server did not start within 30 s")
        if self._startup_error is not None:
            raise RuntimeError(f"the test server could not start: {self._startup_error}")
        return self

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(30)
            self._loop = self._runner = None

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_post("/chat/completions", self._chat)
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
            app.router.add_get("/v1/models", self._models)
            # handler_cancellation: a hanging handler ends when its client gives up;
            # a short shutdown_timeout keeps stop() quick with hangs in flight.
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                shutdown_timeout=0.5,
                handler_cancellation=True,
            )
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", self._requested_port, backlog=16384)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            self._runner = runner
            self._loop = loop
        except BaseException as error:  # reported to start(), in the caller's thread
            self._startup_error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    # --- handlers --------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = RecordedRequest(
            path=request.path,
            query=dict(request.query),
            headers={name.lower(): value for name, value in request.headers.items()},
            body={},
            started_at=time.monotonic(),
        )
        if self.keep_requests:
            with self._lock:
                self.requests.append(record)
        try:
            body = await request.json()
        except ValueError:
            return _finish(
                record, _error(400, "the request body is not valid JSON", "invalid_request_error")
            )
        if not isinstance(body, dict):
            return _finish(
                record,
                _error(400, "the request body must be a JSON object", "invalid_request_error"),
            )
        record.body = body
        if "deployment" in request.match_info and not body.get("model"):
            body = {
                **body,
                "model": request.match_info["deployment"],
            }  # the recorded body stays as sent
        latency = self.latency(body) if callable(self.latency) else self.latency
        if latency > 0:
            await asyncio.sleep(latency)
        fault = self._choose_fault(body)
        if fault is not None:
            record.fault = fault
            with self._lock:
                self.faults_injected += 1
            early = await self._apply_fault(request, record, fault)
            if early is not None:
                return early
        schema = requested_schema(body)
        given = self._given_answer(body)
        answer: str | ScriptedReply
        if given is not None:
            answer = given
        elif self.reply is not None:
            answer = self.reply(body)
        elif schema is not None:
            answer = json.dumps(example_for_schema(schema))
        else:
            answer = _default_reply(body, self._reply_size(body))
        scripted = answer if isinstance(answer, ScriptedReply) else ScriptedReply(answer)
        if fault is not None and fault.kind in _STRUCTURED_FAULTS:
            scripted = _damaged(scripted, fault.kind, schema)
        text = scripted.text
        calls = _numbered(scripted.tool_calls, body)
        completion_tokens = len(text.split()) + sum(
            len(c.arguments_json.split()) + 1 for _, c in calls
        )
        prompt_tokens = _prompt_tokens(body)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        truncated = fault is not None and fault.kind == "truncate"
        malformed = fault is not None and fault.kind == "malformed"
        if body.get("stream"):
            return await self._stream(
                request,
                record,
                body,
                scripted,
                usage,
                calls,
                truncated=truncated,
                malformed=malformed,
            )
        if malformed or truncated:
            payload = json.dumps(_completion(body, scripted, usage, calls))
            cut = (
                '{"id": "chatcmpl-test", "choices": ['
                if malformed
                else payload[: len(payload) // 2]
            )
            return _finish(record, web.Response(text=cut, content_type="application/json"))
        reported = usage if self.send_usage else None
        record.usage = reported
        return _finish(record, web.json_response(_completion(body, scripted, reported, calls)))

    async def _apply_fault(
        self, request: web.Request, record: RecordedRequest, fault: Fault
    ) -> web.StreamResponse | None:
        """Answer for a fault that replaces the reply; None to go on with a (damaged) reply."""
        if fault.kind == "status":
            return _finish(record, _status_fault(fault))
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            record.finished_at = time.monotonic()
            # Writing to the closed transport fails with ConnectionError, which
            # aiohttp swallows quietly: the client sees a bare disconnect.
            return web.Response(status=500)
        if fault.kind == "hang":
            await asyncio.sleep(_MAX_HANG if fault.seconds is None else fault.seconds)
        return None

    def _reply_size(self, body: Body) -> int:
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or self.reply_tokens
        return max(1, min(int(limit), self.reply_tokens))

    async def _stream(
        self,
        request: web.Request,
        record: RecordedRequest,
        body: Body,
        scripted: ScriptedReply,
        usage: dict[str, int],
        calls: list[tuple[str, ScriptedToolCall]],
        *,
        truncated: bool,
        malformed: bool,
    ) -> web.StreamResponse:
        text = scripted.text
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        record.status = 200
        if malformed:
            await response.write(b"data: {not json\n\n")
            await response.write_eof()
            record.finished_at = time.monotonic()
            return response
        pieces = _pieces(text, self.chunk_words) if text or not calls else []
        await response.write(_sse(_chunk(body, {"role": "assistant", "content": ""}, None)))
        for index, piece in enumerate(pieces):
            if self.chunk_delay > 0 and index:
                await asyncio.sleep(self.chunk_delay)
            await response.write(_sse(_chunk(body, {"content": piece}, None)))
            if truncated:
                break
        if not truncated:
            if scripted.refusal:
                await response.write(_sse(_chunk(body, {"refusal": scripted.refusal}, None)))
            for delta in _tool_call_deltas(calls):
                await response.write(_sse(_chunk(body, delta, None)))
            await response.write(_sse(_chunk(body, {}, _finish_reason(scripted, calls))))
            options = body.get("stream_options") or {}
            if self.send_usage and options.get("include_usage"):
                final = _chunk(body, None, None)
                final["choices"] = []
                final["usage"] = usage
                await response.write(_sse(final))
                record.usage = usage
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        record.finished_at = time.monotonic()
        return response


def _finish(record: RecordedRequest, response: web.Response) -> web.Response:
    record.status = response.status
    record.finished_at = time.monotonic()
    return response


def _prompt_tokens(body: Body) -> int:
    return sum(len(str(message.get("content") or "").split()) for message in _messages(body))


def _messages(body: Body) -> list[Body]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _default_reply(body: Body, size: int) -> str:
    users = [m for m in _messages(body) if m.get("role") == "user"] or _messages(body) or [{}]
    quoted = str(users[-1].get("content") or "")[:REPLY_PREFIX_CHARS]
    words = f"reply from {body.get('model', 'model')} to: {quoted}".split()
    words += [f"w{i}" for i in range(len(words), size)]
    return " ".join(words[:size])


def _pieces(text: str, words_per_piece: int) -> list[str]:
    """Split text into chunks of a few words whose concatenation is exactly ``text``."""
    words = text.split(" ")
    pieces = [
        " ".join(words[i : i + words_per_piece]) for i in range(0, len(words), words_per_piece)
    ]
    return [piece + " " for piece in pieces[:-1]] + pieces[-1:]


def _numbered(
    calls: tuple[ScriptedToolCall, ...], body: Body
) -> list[tuple[str, ScriptedToolCall]]:
    """Each call with an id unique in the conversation (later turns continue the count)."""
    start = tool_results(body)
    return [(f"call_{start + index + 1}", call) for index, call in enumerate(calls)]


def _tool_call_deltas(calls: list[tuple[str, ScriptedToolCall]]) -> list[Body]:
    """The name first, then the arguments in two fragments, as OpenAI streams them."""
    deltas: list[Body] = []
    for index, (call_id, call) in enumerate(calls):
        arguments = call.arguments_json
        half = len(arguments) // 2
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for fragment in (arguments[:half], arguments[half:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    return deltas


def _finish_reason(
    scripted: ScriptedReply, calls: list[tuple[str, ScriptedToolCall]] | None
) -> str:
    return scripted.finish_reason or ("tool_calls" if calls else "stop")


def _completion(
    body: Body,
    scripted: ScriptedReply,
    usage: dict[str, int] | None,
    calls: list[tuple[str, ScriptedToolCall]] | None = None,
) -> Body:
    message: Body = {
        "role": "assistant",
        "content": scripted.text if scripted.text or not scripted.refusal else None,
    }
    if scripted.refusal:
        message["refusal"] = scripted.refusal
    if calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call_id, call in calls
        ]
    payload: Body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(scripted, calls)}
        ],
    }
    if usage is not None:
        payload["usage"] = usage
    return payload


# --- structured output --------------------------------------------------------------------

_STRUCTURED_FAULTS = frozenset({"invalid_json", "wrong_shape", "length", "refusal", "fenced"})
REFUSAL_TEXT = "I'm sorry, I cannot help with that request."


def requested_schema(body: Body) -> Any:
    """The JSON Schema a request asks the answer to follow, in either form; None without one."""
    form = body.get("response_format")
    if not isinstance(form, dict):
        return None
    if form.get("type") == "json_schema" and isinstance(form.get("json_schema"), dict):
        return form["json_schema"].get("schema")
    if form.get("type") == "json_object":
        return form.get("schema", {})
    return None


def _damaged(scripted: ScriptedReply, kind: str, schema: Any) -> ScriptedReply:
    valid = scripted.text if schema is None else json.dumps(example_for_schema(schema))
    if kind == "invalid_json":
        return ScriptedReply("Sure! Here is the plan: {title: Paris")
    if kind == "wrong_shape":
        is_array = isinstance(schema, dict) and schema.get("type") == "array"
        return ScriptedReply(
            json.dumps({"unexpected": 1} if is_array else ["not", "the", "schema"])
        )
    if kind == "length":
        return ScriptedReply(valid[: max(1, len(valid) // 2)], finish_reason="length")
    if kind == "refusal":
        return ScriptedReply("", refusal=REFUSAL_TEXT)
    return ScriptedReply(f"```json\n{valid}\n```")


def _chunk(body: Body, delta: Body | None, finish_reason: str | None) -> Body:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
    }


def _sse(payload: Body) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": code, "param": None}}, status=status
    )


_STATUS_MESSAGES: dict[int, tuple[str, str, str | None]] = {
    400: ("bad request: the test server was told to refuse it", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: ("forbidden", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("request timeout", "server_error", None),
    409: ("conflict", "server_error", None),
    422: ("unprocessable request", "invalid_request_error", None),
    429: ("Rate limit reached", "requests", "rate_limit_exceeded"),
}


def _status_fault(fault: Fault) -> web.Response:
    status = fault.status or 500
    message, kind, code = _STATUS_MESSAGES.get(
        status, ("internal server error", "server_error", None)
    )
    if fault.quota:
        message, kind, code = (
            "You exceeded your current quota",
            "insufficient_quota",
            "insufficient_quota",
        )
    if fault.code is not None:
        code = fault.code
    if fault.message is not None:
        message = fault.message
    response = _error(status, message, kind, code)
    if fault.retry_after is not None:
        seconds = fault.retry_after
        if fault.retry_after_format in ("both", "ms"):
            response.headers["retry-after-ms"] = str(int(seconds * 1000))
        if fault.retry_after_format == "both":
            response.headers["Retry-After"] = str(math.ceil(seconds))
        elif fault.retry_after_format == "seconds":
            response.headers["Retry-After"] = f"{seconds:g}"
        elif fault.retry_after_format == "date":
            response.headers["Retry-After"] = email.utils.formatdate(
                time.time() + seconds, usegmt=True
            )
    return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible test server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--reply-tokens", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of requests given a random fault"
    )
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-usage", action="store_true", help="never report token usage")
    parser.add_argument(
        "--call-tool", metavar="NAME", help="ask for this tool until --tool-turns results are in"
    )
    parser.add_argument("--tool-turns", type=int, default=1)
    parser.add_argument("--tool-arguments", default="{}", help="the tool's arguments, as JSON")
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="MARKER=JSON",
        help="answer requests whose messages contain MARKER with this JSON (repeatable)",
    )
    parser.add_argument(
        "--answers",
        action="append",
        default=[],
        metavar="MARKER=JSON_LIST",
        help="answer requests whose messages contain MARKER with each value of the list in turn, "
        "the last repeating (repeatable)",
    )
    arguments = parser.parse_args(argv)
    hook = (
        call_tool_until(
            arguments.call_tool, json.loads(arguments.tool_arguments), arguments.tool_turns
        )
        if arguments.call_tool
        else None
    )
    server = OpenAITestServer(
        reply=hook,
        latency=arguments.latency,
        reply_tokens=arguments.reply_tokens,
        chunk_delay=arguments.chunk_delay,
        send_usage=not arguments.no_usage,
        port=arguments.port,
        seed=arguments.seed,
        keep_requests=False,  # nothing outside this process could read them
    )
    server.fault_rate = arguments.fault_rate
    for given in arguments.answer:
        marker, separator, value = given.partition("=")
        if not separator:
            parser.error(f"--answer {given!r}: write MARKER=JSON")
        try:
            server.answer_when(marker, json.loads(value))
        except ValueError:
            parser.error(f"--answer {given!r}: the value is not JSON")
    for given in arguments.answers:
        marker, separator, value = given.partition("=")
        try:
            values = json.loads(value) if separator else None
        except ValueError:
            values = None
        if not isinstance(values, list) or not values:
            parser.error(
                f"--answers {given!r}: write MARKER=JSON_LIST, a list of one value or more"
            )
        server.answer_in_turn(marker, values)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with server:
        print(server.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()


__all__ = [
    "DEFAULT_RANDOM_FAULTS",
    "Fault",
    "OpenAITestServer",
    "RecordedRequest",
    "ScriptedReply",
    "ScriptedToolCall",
    "call_tool_until",
    "example_for_schema",
    "requested_schema",
    "tool_results",
]
