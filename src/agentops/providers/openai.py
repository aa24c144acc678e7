"""OpenAI, Azure OpenAI and any OpenAI-compatible server, through the official ``openai`` SDK.

One async client per provider per run, on the SDK's aiohttp transport with a
connection pool sized to the run's concurrency, and ``max_retries=0``: the
engine makes every retry itself, so each attempt is counted and recorded. Every
SDK exception is translated into an ``errors`` type in one place,
``translate_errors``, and no message ever carries the API key.

Imported only when a provider of the ``openai`` or ``azure`` kind is built: it
pulls in the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

import aiohttp
import httpx2
import openai

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
    ResponseFormatRefusedError,
    ServerError,
)
from agentops.providers.endpoints import DEFAULT_OPENAI_BASE_URL, Endpoint
from agentops.providers.kinds import capabilities_of
from agentops.runtime.messages import ChatRequest, ChatResponse, Message, ToolCall
from agentops.runtime.provider import TextCallback, estimated_usage
from agentops.runtime.usage import Usage
from agentops.workflow.provider_kinds import ResponseFormatForm

if TYPE_CHECKING:
    from openai._types import RequestOptions
    from openai.types.chat import ChatCompletionMessageParam

DEFAULT_TIMEOUT = 600.0  # seconds per attempt when the agent sets none (the SDK's own default)
CONNECT_TIMEOUT = 10.0
CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})
_DETAIL_LIMIT = 300


class OpenAIProvider:
    """A Provider of the ``openai`` or ``azure`` kind, shared by every agent routed to it."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_connections: int = 16,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.name = endpoint.name
        self.kind = endpoint.kind
        self.capabilities = capabilities_of(endpoint.kind)
        self.endpoint = endpoint
        # How output schemas are sent; "auto" starts with OpenAI's form and, on a compatible
        # server that refuses it (llama-cpp-python's), switches to the json_object form.
        self.schema_form: ResponseFormatForm = (
            "json_schema" if endpoint.response_format == "auto" else endpoint.response_format
        )
        self._may_switch_form = (
            endpoint.response_format == "auto"
            and endpoint.kind == "openai"
            and endpoint.url != DEFAULT_OPENAI_BASE_URL
        )
        self.client: openai.AsyncOpenAI
        self._owns_client = client is None
        if (
            client is not None
        ):  # the caller's own client: its configuration, and the caller closes it
            self.client = client
            return
        # The aiohttp transport sizes its connector (``limit``) from max_connections.
        http_client = openai.DefaultAioHttpClient(
            limits=httpx2.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=httpx2.Timeout(DEFAULT_TIMEOUT, connect=CONNECT_TIMEOUT),
        )
        if endpoint.kind == "azure":
            self.client = openai.AsyncAzureOpenAI(
                api_key=endpoint.api_key,
                azure_endpoint=endpoint.url,
                api_version=endpoint.api_version,
                max_retries=0,
                http_client=http_client,
            )
        else:
            self.client = openai.AsyncOpenAI(
                api_key=endpoint.api_key,
                base_url=endpoint.base_url,
                max_retries=0,
                http_client=http_client,
            )

    def complete(
        self, request: ChatRequest, on_text: TextCallback
    ) -> Coroutine[Any, Any, ChatResponse]:
        """The call's coroutine. Only a request whose schema the server may refuse over its
        form is wrapped to handle that; any other is the call itself, a frame fewer on
        every resumption."""
        if request.response_format is None or self.schema_form != "json_schema":
            return self._complete(request, on_text)
        return self._complete_minding_form(request, on_text)

    async def _complete_minding_form(
        self, request: ChatRequest, on_text: TextCallback
    ) -> ChatResponse:
        try:
            return await self._complete(request, on_text)
        except ProviderError as error:
            if not self._refused_schema_form(request, error):
                raise
            if self._may_switch_form:
                self.schema_form = "json_object"
                raise ResponseFormatRefusedError(
                    f"{error}; {self.name} does not take OpenAI's json_schema response_format, so the next "
                    "attempt sends the schema as {type: json_object, schema} (set "
                    f"providers.{self.name}.response_format to choose the form)",
                    status=error.status,
                    retry_after=0,
                ) from error
            if self.endpoint.url == DEFAULT_OPENAI_BASE_URL or self.kind == "azure":
                raise
            raise BadRequestError(
                f"{error}; if this server does not take OpenAI's json_schema response_format, set "
                f"providers.{self.name}.response_format: json_object (llama-cpp-python's server) or none "
                "(the answer is then only validated here)",
                status=error.status,
            ) from error

    def _refused_schema_form(self, request: ChatRequest, error: ProviderError) -> bool:
        """The server rejected the request over its json_schema response_format (llama-cpp-python
        answers 500 with a validation error naming the field; others 400 or 422)."""
        if request.response_format is None or self.schema_form != "json_schema":
            return False
        text = str(error)
        return error.status in (400, 422, 500) and (
            "response_format" in text or "json_schema" in text
        )

    def _complete(
        self, request: ChatRequest, on_text: TextCallback
    ) -> Coroutine[Any, Any, ChatResponse]:
        """The call, streamed or whole. Not a coroutine itself: ``complete`` awaits the chosen
        one directly, so each resumption of a call passes one frame fewer."""
        messages = list(map(_wire_message, request.messages))  # no comprehension's frame
        # Without an agent timeout (None) the client's own (DEFAULT_TIMEOUT) applies: no
        # per-call options to merge.
        timeout = (
            None
            if request.timeout is None
            else httpx2.Timeout(request.timeout, connect=min(request.timeout, CONNECT_TIMEOUT))
        )
        if not request.stream:
            return self._complete_whole(request, messages, timeout)
        return self._complete_streamed(request, messages, timeout, on_text)

    async def _complete_streamed(
        self,
        request: ChatRequest,
        messages: list[dict[str, Any]],
        timeout: httpx2.Timeout | None,
        on_text: TextCallback,
    ) -> ChatResponse:
        pieces: list[str] = []
        calls: dict[int, _PartialCall] = {}
        usage: Usage | None = None
        finish_reason: str | None = None
        answered_by: str | None = None
        refusal: list[str] = []
        with translate_errors(self.endpoint, request.model):
            stream = await self.client.chat.completions.create(
                model=request.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                max_tokens=request.max_tokens,
                temperature=openai.omit if request.temperature is None else request.temperature,
                stream=True,
                stream_options={"include_usage": True},
                timeout=openai.not_given if timeout is None else timeout,
                **_tool_options(request, self.schema_form),
            )
        chunks = stream.__aiter__()
        consumed = False
        try:
            while True:
                # Only the SDK's work is translated: an error raised by on_text is
                # the caller's own and must not pass for a provider failure.
                with translate_errors(self.endpoint, request.model):
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        consumed = True
                        break
                if chunk.usage is not None:
                    usage = Usage(
                        chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0
                    )
                answered_by = chunk.model or answered_by
                for choice in chunk.choices:
                    content = choice.delta.content if choice.delta else None
                    if content:
                        pieces.append(content)
                        on_text(content)
                    refused = getattr(choice.delta, "refusal", None) if choice.delta else None
                    if refused:
                        refusal.append(refused)
                    if choice.delta and choice.delta.tool_calls:
                        for delta in choice.delta.tool_calls:
                            calls.setdefault(delta.index, _PartialCall()).add(delta)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            # A stream read to its end has closed its response (the SDK does). Otherwise,
            # also on cancellation, close it so the connection goes back to the pool; a
            # failure to close must not replace the error (or cancellation) under way.
            if not consumed:
                with contextlib.suppress(Exception):
                    await asyncio.shield(stream.close())
        if finish_reason is None:
            raise MalformedResponseError(
                f"{self.name}: the stream for {request.model!r} ended before the answer was complete"
            )
        tool_calls = tuple(calls[index].finished(index) for index in sorted(calls))
        return self._response(
            request,
            "".join(pieces),
            tool_calls,
            usage,
            finish_reason,
            answered_by,
            "".join(refusal) or None,
        )

    async def _complete_whole(
        self, request: ChatRequest, messages: list[dict[str, Any]], timeout: httpx2.Timeout | None
    ) -> ChatResponse:
        """One call, not streamed, posted and read as plain JSON. The SDK's typed path costs
        more client CPU than everything else in a call: it transforms the request through its
        TypedDict annotations and builds a pydantic model of the answer (benchmarks/bench_batch.py).
        ``client.post`` is the SDK's documented way to send a body as it is, with the same
        authentication, Azure deployment routing and errors."""
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.tools or request.response_format is not None:
            payload.update(_tool_options(request, self.schema_form))
        options: RequestOptions = {} if timeout is None else {"timeout": timeout}
        try:  # translate_errors' work, without a context manager made and left per call
            answer = await self.client.post(
                "/chat/completions", body=payload, cast_to=httpx2.Response, options=options
            )
            body = json.loads(answer.content)
        except Exception as error:
            raise translation_of(error, self.endpoint, request.model)  # noqa: B904 (chained there)
        try:
            choice = body["choices"][0]
            message = choice["message"]
            text = message.get("content") or ""
            finish_reason = choice["finish_reason"]
            wanted = message.get("tool_calls")
            tool_calls = (
                tuple(
                    ToolCall(
                        call.get("id") or f"call_{index}",
                        call["function"]["name"],
                        call["function"].get("arguments") or "{}",
                    )
                    for index, call in enumerate(wanted)
                )
                if wanted
                else ()
            )
            reported = body.get("usage")
            refusal = message.get("refusal")
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise MalformedResponseError(
                f"{self.name} sent a completion without {error} for {request.model!r}"
            ) from error
        if not isinstance(text, str) or not isinstance(finish_reason, str):
            raise MalformedResponseError(
                f"{self.name} sent a completion of the wrong shape for {request.model!r}"
            )
        usage = None
        if isinstance(reported, dict):  # as json.loads makes every object
            usage = Usage(
                int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0)
            )
        model = body.get("model")
        return self._response(
            request,
            text,
            tool_calls,
            usage,
            finish_reason,
            model if isinstance(model, str) else None,
            refusal if isinstance(refusal, str) and refusal else None,
        )

    def _response(
        self,
        request: ChatRequest,
        text: str,
        tool_calls: tuple[ToolCall, ...],
        usage: Usage | None,
        finish_reason: str,
        answered_by: str | None,
        refusal: str | None = None,
    ) -> ChatResponse:
        if finish_reason == "content_filter":
            raise ContentPolicyError(
                f"{self.name}: the content filter stopped the answer for {request.model!r}"
            )
        if usage is None:
            usage = estimated_usage(
                request, text + "".join(c.name + c.arguments for c in tool_calls)
            )
        return ChatResponse(text, usage, finish_reason, tool_calls, answered_by, refusal)

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.close()


class _PartialCall:
    """One tool call assembled from its ``delta.tool_calls`` pieces (the arguments come in fragments)."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: Any) -> None:
        if delta.id:
            self.id = delta.id
        function = delta.function
        if function is None:
            return
        # OpenAI sends the name once; some compatible servers repeat it in every fragment.
        if function.name and function.name != self.name:
            self.name += function.name
        if function.arguments:
            self.arguments.append(function.arguments)

    def finished(self, index: int) -> ToolCall:
        if not self.name:
            raise MalformedResponseError(
                f"the model asked for tool call #{index + 1} without naming the tool"
            )
        return ToolCall(self.id or f"call_{index}", self.name, "".join(self.arguments) or "{}")


def _wire_message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _tool_options(request: ChatRequest, form: ResponseFormatForm) -> dict[str, Any]:
    """``tools`` and ``response_format`` when the request has them (nothing otherwise: no per-call cost).

    ``form`` is how the endpoint takes a schema (``providers.NAME.response_format``, ``auto`` resolved):
    OpenAI's ``json_schema`` form; ``json_object`` with the schema beside it (the form
    llama-cpp-python's server and some hosted servers take); or ``none`` (nothing is
    sent: the answer is only validated here).
    """
    options: dict[str, Any] = {}
    if request.tools:
        options["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in request.tools
        ]
    if request.response_format is not None and form == "json_object":
        options["response_format"] = {
            "type": "json_object",
            "schema": dict(request.response_format.schema),
        }
    elif request.response_format is not None and form in ("json_schema", "auto"):
        options["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.response_format.name,
                "schema": dict(request.response_format.schema),
                "strict": request.response_format.strict,
            },
        }
    return options


class translate_errors:  # named for what ``with`` does, as contextlib's suppress
    """Turn every SDK and transport exception into an ``errors`` type, with no key in any message.

    A class rather than a ``contextlib.contextmanager`` generator: it wraps every call, and
    entering and leaving it then costs two plain method calls."""

    __slots__ = ("endpoint", "model")

    def __init__(self, endpoint: Endpoint, model: str) -> None:
        self.endpoint = endpoint
        self.model = model

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> Literal[False]:
        if error is None or not isinstance(error, Exception):
            return False  # no error, or cancellation or an exit: as they are
        translated = translation_of(error, self.endpoint, self.model)
        if translated is error:
            return False
        raise translated


def translation_of(error: Exception, endpoint: Endpoint, model: str) -> Exception:
    """What ``error`` is raised as: an ``errors`` type caused by it, for the SDK's and the
    transport's; itself when already translated, or when it is the caller's own bug."""
    if isinstance(error, ProviderError):
        return error
    translated = _translated(error, endpoint, model)
    if translated is None:
        return error
    translated.__cause__ = error  # as ``raise translated from error``
    return translated


def _translated(error: Exception, endpoint: Endpoint, model: str) -> ProviderError | None:
    if isinstance(error, openai.APIStatusError):
        return _status_error(error, endpoint, model)
    if isinstance(error, openai.APIConnectionError):  # APITimeoutError included
        failure = _connection_failure(error, endpoint)
        if failure is not None:
            return ProviderConnectionError(failure)
        return ProviderTimeoutError(f"{endpoint.name} did not answer in time for {model!r}")
    if isinstance(error, (openai.APIResponseValidationError, ValueError)):
        # JSONDecodeError is a ValueError
        return MalformedResponseError(
            f"{endpoint.name} sent a response that is not valid JSON for {model!r}: {_detail(error, endpoint)}"
        )
    if isinstance(error, openai.APIError):  # an error event inside a 200 stream
        return ServerError(
            f"{endpoint.name} reported an error mid-answer: {_detail(error, endpoint)}"
        )
    if isinstance(error, TimeoutError):
        return ProviderTimeoutError(f"{endpoint.name} did not answer in time for {model!r}")
    if isinstance(error, (httpx2.HTTPError, aiohttp.ClientError, OSError)):
        return ProviderConnectionError(
            f"the connection to {endpoint.name} failed: {_detail(error, endpoint)}"
        )
    if isinstance(error, openai.OpenAIError):
        return MalformedResponseError(f"{endpoint.name}: {_detail(error, endpoint)}")
    return None


def _status_error(error: openai.APIStatusError, endpoint: Endpoint, model: str) -> ProviderError:
    status = error.status_code
    detail = _scrub(_error_message(error), endpoint.api_key)[:_DETAIL_LIMIT]
    code = _error_code(error)
    where = f"{endpoint.name} ({status})"
    if status in (401, 403):
        return AuthenticationError(
            f"{where} rejected the API key: {detail}; set {endpoint.key_source} to a valid key",
            status=status,
        )
    if status == 404:
        if endpoint.kind == "azure":
            what = f"deployment {model!r} not found at {endpoint.url}; check the agent's model or AZURE_GPT5_DEPLOYMENT"
        else:
            what = f"model {model!r} not found at {endpoint.url}; check the agent's model"
        return ModelNotFoundError(f"{where}: {what} ({detail})", status=status)
    if status == 429 and code == "insufficient_quota":
        return QuotaExhaustedError(
            f"{where}: quota exhausted ({detail}); check your plan and billing", status=status
        )
    if status == 429:
        return RateLimitError(
            f"{where}: rate limited ({detail})",
            status=status,
            retry_after=retry_after(error.response.headers),
        )
    if status in (408, 409) or status >= 500:
        return ServerError(
            f"{where}: {detail}", status=status, retry_after=retry_after(error.response.headers)
        )
    if code in CONTENT_POLICY_CODES:
        return ContentPolicyError(
            f"{where}: the provider refused the content ({detail})", status=status
        )
    return BadRequestError(f"{where} refused the request for {model!r}: {detail}", status=status)


def _error_body(error: openai.APIStatusError) -> Mapping[str, Any]:
    body = error.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return body["error"]  # type: ignore[no-any-return]
    return body if isinstance(body, Mapping) else {}


def _error_message(error: openai.APIStatusError) -> str:
    message = _error_body(error).get("message")
    return str(message) if message else error.message


def _error_code(error: openai.APIStatusError) -> str | None:
    body = _error_body(error)
    for key in ("code", "type"):
        value = body.get(key)
        if value and str(value) in CONTENT_POLICY_CODES | {"insufficient_quota"}:
            return str(value)
    code = body.get("code")
    return str(code) if code else None


def _connection_failure(error: BaseException, endpoint: Endpoint) -> str | None:
    """What went wrong with the connection, or None when the call really timed out.

    The SDK's aiohttp transport reports every aiohttp connection error (refused,
    server hung up) as a timeout; the original error is further down the chain.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (aiohttp.ClientConnectorError, ConnectionRefusedError)):
            return f"could not connect to {endpoint.name} at {endpoint.url} ({_detail(seen, endpoint)})"
        if isinstance(
            seen, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError)
        ):
            return f"{endpoint.name} closed the connection without answering ({_detail(seen, endpoint)})"
        if isinstance(seen, TimeoutError):
            return None
        seen = seen.__cause__ or seen.__context__
    if type(error) is openai.APIConnectionError:
        return f"could not reach {endpoint.name} at {endpoint.url} ({_detail(error, endpoint)})"
    return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(error: BaseException, endpoint: Endpoint) -> str:
    text = str(error) or type(error).__name__
    return _scrub(text, endpoint.api_key)[:_DETAIL_LIMIT]


def _scrub(text: str, secret: str) -> str:
    """Remove the key from text a server or a library produced, in case it echoes it."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


__all__ = ["OpenAIProvider", "retry_after", "translate_errors"]
