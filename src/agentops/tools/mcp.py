"""MCP servers as tools, through the official ``mcp`` SDK (major version 2).

A server is started once per run, after validation and before the first model
call: a stdio server as a child process (in its own process group, its
working directory the workflow file's folder, its stderr into a temporary file
kept with the run, never the terminal); an HTTP server by connecting to its
streamable-HTTP endpoint. The handshake and the tool list must complete within
``startup_timeout``.

The SDK's context managers (anyio task groups and cancel scopes) must be
entered and left by one task, so each server has a host task that opens the
connection, reports its tools, waits to be closed and closes it. Agents call
tools from their own tasks through the session. Closing is bounded: the SDK
closes stdin, waits, then terminates the process group; then whatever is left
of the group (a grandchild of a server that exited on its own) is terminated
and killed, so no child outlives the run — except one that left the group
(``setsid``), which no group-wide signal reaches. The SDK gives no handle on
the process, so its spawn is wrapped to note the group (``_note_group``).

Only the end of a server's stderr file is read (``STDERR_KEEP_BYTES``), however
much it wrote. The SDK's log records about a server are masked and kept with
its stderr, not shown (``sdk_log``).

This module imports ``mcp``; it is imported only when a workflow has an MCP server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import tempfile
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

try:
    import anyio
    import httpx2
    import mcp.client.stdio as sdk_stdio
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.shared.exceptions import MCPError
    from mcp_types import CallToolResult, TextContent
    from mcp_types import Tool as McpToolInfo
except ImportError as error:  # pragma: no cover - the extra is missing
    from agentops.errors import ConfigurationError

    raise ConfigurationError(
        f"MCP servers under tools: need the mcp SDK ({error}): pip install 'agentops[mcp]'"
    ) from None

from agentops.tools import sdk_log
from agentops.tools.base import ToolCallError, truncate
from agentops.tools.environment import Secrets

STDERR_TAIL_LINES = 20  # in the error when a server does not start
STDERR_KEEP_BYTES = 64 * 1024  # the end of a server's stderr kept with the run
# The SDK's own shutdown is bounded (stdin, then SIGTERM, then SIGKILL) within ~6 s.
CLOSE_TIMEOUT = 10.0
# What is left of a server's process group: SIGTERM, this long, then SIGKILL.
GROUP_TERM_TIMEOUT = 1.0


class ToolServerStartError(Exception):
    """The server did not start or did not complete the handshake; the message names it and its stderr."""


@dataclass
class McpServerConfig:
    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # expanded: secrets
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # expanded: secrets
    cwd: Path | None = None
    startup_timeout: float = 30.0

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    @property
    def target(self) -> str:
        """The command line or URL, for messages (never the env or the headers)."""
        if self.command is not None:
            return shlex.join([self.command, *self.args])
        return self.url or ""


class McpServer:
    """One running MCP server; ``start()``, then ``call()`` from any task, then ``aclose()``."""

    def __init__(self, config: McpServerConfig, secrets: Secrets) -> None:
        self.config = config
        self.secrets = secrets
        self.tools: list[McpToolInfo] = []
        self.started_at = 0.0
        self._session: ClientSession | None = None
        self._stderr: TextIO | None = None
        self._host: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing = asyncio.Event()
        self._handshake: anyio.CancelScope | None = None
        self._failure: str | None = None  # why calls cannot be made any more
        self.group: int | None = None  # a stdio server's process group, noted when it is spawned
        self.log = sdk_log.ServerLog(secrets)

    @property
    def name(self) -> str:
        return self.config.name

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        self.started_at = time.time()
        if config.command is not None:
            # Kept open for the run (the child writes to it); read and closed by aclose().
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        sdk_log.register(self.log)
        self._ready = asyncio.get_running_loop().create_future()
        self._host = asyncio.create_task(self._serve(), name=f"mcp:{config.name}")
        try:
            async with asyncio.timeout(config.startup_timeout):
                await asyncio.shield(self._ready)
        except TimeoutError:
            failure = self._start_failure(  # before closing: its stderr so far and what it wrote to stdout
                f"did not complete the MCP handshake within {config.startup_timeout:g}s (startup_timeout)"
            )
            await self.aclose()
            raise ToolServerStartError(failure) from None
        except ToolServerStartError:
            await self.aclose()
            raise

    async def _serve(self) -> None:
        assert self._ready is not None
        config = self.config
        # Seen by this task and those the SDK starts from it: the spawn and the log records.
        _SPAWNING.set(self)
        sdk_log.SERVING.set(self.log)
        try:
            async with contextlib.AsyncExitStack() as stack:
                if config.command is not None:
                    assert self._stderr is not None
                    parameters = StdioServerParameters(
                        command=config.command,
                        args=config.args,
                        env=config.env or None,
                        cwd=config.cwd,
                    )
                    read, write = await stack.enter_async_context(
                        stdio_client(parameters, errlog=self._stderr)
                    )
                else:
                    assert config.url is not None
                    client = create_mcp_http_client(headers=config.headers or None)
                    await stack.enter_async_context(client)
                    streams = await stack.enter_async_context(
                        streamable_http_client(config.url, http_client=client)
                    )
                    read, write = streams[0], streams[1]
                session = await stack.enter_async_context(ClientSession(read, write))
                # aclose() cancels a handshake still waited for: the SDK's shutdown then runs at once.
                with anyio.CancelScope() as self._handshake:
                    await session.initialize()
                    self.tools = await _list_all_tools(session)
                if self._handshake.cancel_called:
                    return
                self._session = session
                if not self._ready.done():
                    self._ready.set_result(None)
                await self._closing.wait()
        except Exception as error:  # reported to start(), or to later calls
            reason = _describe_failure(error, config)
            self._failure = self.secrets.scrub(reason)
            if not self._ready.done():
                self._ready.set_exception(ToolServerStartError(self._start_failure(reason)))
        finally:
            self._session = None
            if self._failure is None:
                self._failure = f"the MCP server '{config.name}' was closed"

    async def aclose(self) -> str:
        """Close the connection (and stop the process); return the end of its stderr, scrubbed."""
        self._closing.set()
        if self._handshake is not None:
            self._handshake.cancel()  # else a server that never answers holds this up CLOSE_TIMEOUT
        host = self._host
        if host is not None and not host.done():
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await asyncio.shield(host)
            except TimeoutError:  # the SDK's shutdown is bounded; this is the last resort
                host.cancel()
                with contextlib.suppress(BaseException):
                    await host
        if self.group is not None:
            await _end_group(self.group)
        sdk_log.unregister(self.log)
        tail = self.stderr_tail()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return tail

    def stderr_tail(self, limit: int = STDERR_KEEP_BYTES) -> str:
        """The end of the server's stderr, then what the SDK said about the server; masked."""
        notes = "".join(f"{line}\n" for line in self.log.lines())
        return self._stderr_end(limit - len(notes.encode())) + self.secrets.scrub(notes)

    def _stderr_end(self, limit: int) -> str:
        """The last ``limit`` bytes of the stderr file, masked; read from the end (it may hold gigabytes)."""
        if self._stderr is None or limit <= 0:
            return ""
        # Read a little more than kept: a secret that the cut splits is still found and masked.
        margin = max((len(value.encode()) for value in self.secrets.values), default=0)
        try:
            descriptor = self._stderr.fileno()
            size = os.fstat(descriptor).st_size
            start = max(0, size - limit - margin)
            data = os.pread(descriptor, size - start, start)
        except (OSError, ValueError):
            return ""
        text = self.secrets.scrub(data.decode("utf-8", errors="replace"))
        if start == 0:
            return text
        end = text.encode()[-limit:]
        return end.decode("utf-8", errors="ignore")  # a character the cut splits is dropped

    def _start_failure(self, reason: str) -> str:
        where = f"MCP server '{self.name}' ({self.config.target})"
        noise = self.log.stdout_noise()
        wrote = f"; it {noise}" if noise else ""
        lines = [line for line in self._stderr_end(STDERR_KEEP_BYTES).splitlines() if line.strip()]
        tail = f"; its stderr ended with: {' | '.join(lines[-STDERR_TAIL_LINES:])}" if lines else ""
        return self.secrets.scrub(f"{where} {reason}{wrote}{tail}")

    # --- calls ----------------------------------------------------------------------------

    async def call(self, tool: str, arguments: Mapping[str, Any], timeout: float) -> str:
        session = self._session
        if session is None:
            raise ToolCallError(self._failure or f"the MCP server '{self.name}' is not running")
        serving = sdk_log.SERVING.set(self.log)
        try:
            async with asyncio.timeout(timeout):
                result = await session.call_tool(tool, dict(arguments))
        except TimeoutError:
            raise ToolCallError(f"no result within {timeout:g}s (the tool's timeout)") from None
        except MCPError as error:
            raise ToolCallError(self.secrets.scrub(_mcp_error(error, self.name))) from None
        except Exception as error:  # a transport failure mid-call: the server went away
            raise ToolCallError(
                self.secrets.scrub(
                    f"the MCP server '{self.name}' failed: {type(error).__name__}: {error}"
                )
            ) from None
        finally:
            sdk_log.SERVING.reset(serving)
        text = self.secrets.scrub(truncate(result_text(result)))
        if result.is_error:
            raise ToolCallError(text or "the tool reported an error")
        return text


_SPAWNING: ContextVar[McpServer | None] = ContextVar("agentops_mcp_spawning", default=None)


def _note_group() -> None:
    """Wrap the SDK's spawn to note each stdio server's process group on its McpServer.

    The SDK starts the server in a new session, so its pid is its group's id; the
    group outlives the server while any member lives, so its id is not reused."""
    spawn = getattr(sdk_stdio, "_create_platform_compatible_process", None)
    if spawn is None:  # another SDK version: its close still ends the group while the server lives
        return

    async def spawn_noting_group(*args: Any, **kwargs: Any) -> Any:
        process = await spawn(*args, **kwargs)
        server = _SPAWNING.get()
        if server is not None:
            server.group = process.pid
        return process

    sdk_stdio._create_platform_compatible_process = spawn_noting_group


_note_group()


async def _end_group(group: int) -> None:
    """SIGTERM what is left of a process group, then SIGKILL what still is after GROUP_TERM_TIMEOUT."""
    if not _group_alive(group):
        return  # the common case: the server and its children are gone
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + GROUP_TERM_TIMEOUT
    try:
        while time.monotonic() < deadline and _group_alive(group):
            await asyncio.sleep(0.02)
    finally:  # on a second Ctrl-C too
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal: alive, as far as we can tell
        pass
    return True


async def _list_all_tools(session: ClientSession) -> list[McpToolInfo]:
    tools: list[McpToolInfo] = []
    listed = await session.list_tools()
    tools.extend(listed.tools)
    while listed.next_cursor:
        from mcp_types import PaginatedRequestParams

        listed = await session.list_tools(params=PaginatedRequestParams(cursor=listed.next_cursor))
        tools.extend(listed.tools)
    return tools


def result_text(result: CallToolResult) -> str:
    """The text blocks of a result; other blocks (images, resources) described as JSON."""
    parts = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(block.model_dump_json(exclude_none=True, by_alias=True))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


def _mcp_error(error: MCPError, server: str) -> str:
    from mcp_types import CONNECTION_CLOSED

    if error.code == CONNECTION_CLOSED:
        return f"the MCP server '{server}' closed the connection (it may have exited)"
    return f"the MCP server '{server}' answered with an error: {error.message}"


def _describe_failure(error: BaseException, config: McpServerConfig) -> str:
    """One phrase for why a server's connection failed (at start or later)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, FileNotFoundError) and config.command is not None:
        return f"could not be started: command '{config.command}' not found; check tools.{config.name}.mcp.command"
    if isinstance(error, PermissionError):
        return f"could not be started: {error}"
    if isinstance(error, MCPError):
        return f"ended the handshake: {error.message}"
    if isinstance(error, httpx2.HTTPError):
        return f"could not be reached: {type(error).__name__}: {error}"
    if isinstance(error, BaseExceptionGroup):
        inner = "; ".join(f"{type(e).__name__}: {e}" for e in error.exceptions[:3])
        return f"failed: {inner}"
    return f"failed: {type(error).__name__}: {error}"


__all__ = ["McpServer", "McpServerConfig", "ToolServerStartError", "result_text"]
