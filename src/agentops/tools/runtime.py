"""The tools of one run: MCP servers started once, each agent's table of tools, and the calls.

``ToolRuntime.start()`` runs after validation and before the first model call:
it starts every MCP server an agent of the run uses (concurrently), lists their
tools, and builds each agent's table. Problems found only then (a server that
does not start; ``allow`` or ``SERVER.TOOL`` naming a tool the server does not
have; two tools that would reach the model under one name) stop the run with
exit 2 before anything is spent. ``aclose()`` closes every server, on success,
failure, interrupt or timeout alike, and returns a ``ToolServerStopped`` event
per server (with its stderr) for the history.

Names sent to the model are ``prefix`` + the tool's own name, made legal for
OpenAI (``^[a-zA-Z0-9_-]{1,64}$``) and unique within each agent.

``AgentToolbox.run_calls`` runs one turn's calls, in parallel up to the agent's
``max_parallel_tool_calls``, emitting ``ToolCallStarted`` / ``ToolCallFinished``.
Errors go back to the model as the tool's result, unless the tool says
``on_tool_error: fail``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentops.errors import Diagnostic, ToolServerError, WorkflowError, describe_exception
from agentops.runtime.agent_run import ToolOutcome
from agentops.runtime.cache import RequestKey, ResponseCache, canonical_json, tool_key
from agentops.runtime.events import (
    Event,
    ToolCallFinished,
    ToolCallRecord,
    ToolCallStarted,
    ToolServerStopped,
)
from agentops.runtime.messages import (
    ChatResponse,
    Message,
    ToolCall,
    ToolDefinition,
    tool_result,
    valid_text,
)
from agentops.tools.base import Tool, ToolCallError
from agentops.tools.catalog import ToolCatalog
from agentops.workflow.suggest import did_you_mean

if TYPE_CHECKING:
    from agentops.tools.mcp import McpServer
    from agentops.workflow.spec import Workflow

HISTORY_LIMIT = 10_000  # characters of a call's arguments and result kept in the history
_ILLEGAL = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 64


@dataclass
class McpTool:
    """One tool of a running MCP server."""

    label: str
    base_name: str
    description: str
    parameters: Mapping[str, Any]
    timeout: float
    server: McpServer

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        return await self.server.call(self.base_name, arguments, self.timeout)


@dataclass(frozen=True)
class Entry:
    tool: Tool
    sent_name: str
    fail_on_error: bool
    cache_source: str | None = None  # the tool says cache: true: where it comes from, for its key


class ToolRuntime:
    """See the module docstring. ``agents``: the agents this run will call (reused ones left out)."""

    def __init__(self, catalog: ToolCatalog, agents: Iterable[str]) -> None:
        self.catalog = catalog
        self.workflow: Workflow = catalog.loaded.workflow
        self.agents = [name for name in agents if self.workflow.agent(name).tools]
        self.servers: dict[str, McpServer] = {}
        self._tables: dict[str, dict[str, Entry]] = {}
        self._closed = False
        # The response cache, for the results of tools that say cache: true (set by whoever
        # assembles the run; a replay leaves it unset: its tools run for real).
        self.cache: ResponseCache | None = None

    # --- start --------------------------------------------------------------------------------

    async def start(self) -> None:
        needed = sorted(
            {
                pick.partition(".")[0]
                for name in self.agents
                for pick in self.workflow.agent(name).tools
            }
            & set(self.catalog.servers)
        )
        if needed:
            await self._start_servers(needed)
        try:
            self._build_tables()
        except BaseException:
            await self.aclose()
            raise

    async def _start_servers(self, names: list[str]) -> None:
        from agentops.tools.mcp import McpServer, McpServerConfig, ToolServerStartError

        for name in names:
            server = self.catalog.servers[name]
            self.servers[name] = McpServer(
                McpServerConfig(
                    name=name,
                    command=server.command,
                    args=server.args,
                    env=server.env,
                    url=server.url,
                    headers=server.headers,
                    cwd=self.catalog.loaded.folder,
                    startup_timeout=server.spec.startup_timeout,
                ),
                self.catalog.secrets,
            )
        outcomes = await asyncio.gather(
            *(s.start() for s in self.servers.values()), return_exceptions=True
        )
        failures = [str(o) for o in outcomes if isinstance(o, ToolServerStartError)]
        unexpected = [
            o
            for o in outcomes
            if isinstance(o, BaseException) and not isinstance(o, ToolServerStartError)
        ]
        if failures or unexpected:
            await self.aclose()
            if unexpected and not failures:
                raise unexpected[0]
            raise ToolServerError("; ".join(failures) + " (no model was called)")

    def _build_tables(self) -> None:
        problems: list[Diagnostic] = []
        loaded = self.catalog.loaded
        listed = {
            name: {info.name: info for info in server.tools}
            for name, server in self.servers.items()
        }
        for name, server_tools in listed.items():
            allow = self.workflow.tools[name].allow
            for index, wanted in enumerate(allow or []):
                if wanted not in server_tools:
                    problems.append(
                        loaded.diagnostic(
                            ("tools", name, "allow", index),
                            f"tools.{name}.allow names '{wanted}', which MCP server '{name}' does not have"
                            f"{did_you_mean(wanted, server_tools)} (it has: {_listing(server_tools)})",
                        )
                    )
        for agent_name in self.agents:
            agent = self.workflow.agent(agent_name)
            index_of = next(i for i, a in enumerate(self.workflow.agents) if a.name == agent_name)
            table: dict[str, Entry] = {}
            origin: dict[str, str] = {}
            for position, pick in enumerate(agent.tools):
                where = ("agents", index_of, "tools", position)
                tools, problem = self._tools_of(pick, listed)
                if problem is not None:
                    problems.append(loaded.diagnostic(where, f"agent '{agent_name}': {problem}"))
                for tool in tools:
                    spec = self.workflow.tools[pick.partition(".")[0]]
                    sent = legal_name((spec.prefix or "") + tool.base_name)
                    if sent in table:
                        other = origin[sent]
                        problems.append(
                            loaded.diagnostic(
                                where,
                                (
                                    f"agent '{agent_name}': '{tool.label}' and '{other}' would both reach the model as "
                                    f"'{sent}'; give one of them a prefix: (e.g. tools.{pick.partition('.')[0]}.prefix: "
                                    f"{pick.partition('.')[0]}_)"
                                ),
                            )
                        )
                        continue
                    source = None
                    if spec.cache:
                        source = spec.python or canonical_json(
                            spec.mcp.model_dump(mode="json") if spec.mcp else None
                        )
                    table[sent] = Entry(tool, sent, spec.on_tool_error == "fail", source)
                    origin[sent] = tool.label
            self._tables[agent_name] = table
        if problems:
            raise WorkflowError(problems)

    def _tools_of(
        self, pick: str, listed: Mapping[str, Mapping[str, Any]]
    ) -> tuple[list[Tool], str | None]:
        """The tools a pick names, or why it names none."""
        key, _, one = pick.partition(".")
        spec = self.workflow.tools[key]
        if key in self.catalog.python:
            return [self.catalog.python[key]], None
        server = self.servers[key]
        available = listed[key]
        if one:
            if one not in available:
                return [], (
                    f"MCP server '{key}' has no tool '{one}'{did_you_mean(one, available)} "
                    f"(it has: {_listing(available)})"
                )
            names = [one]
        else:
            names = [n for n in available if spec.allow is None or n in spec.allow]
        return [
            McpTool(
                label=f"{key}.{n}",
                base_name=n,
                description=available[n].description or f"The tool {n} of MCP server {key}.",
                parameters=available[n].input_schema,
                timeout=spec.timeout,
                server=server,
            )
            for n in names
        ], None

    # --- per agent ----------------------------------------------------------------------------

    def for_agent(
        self, name: str, emit: Callable[[Event], None], records: list[ToolCallRecord]
    ) -> AgentToolbox | None:
        """The agent's toolbox (None: it has no tools); its calls are appended to ``records``."""
        table = self._tables.get(name)
        if not table:
            return None
        limit = self.workflow.effective_parallel_tool_calls(self.workflow.agent(name))
        return AgentToolbox(
            table, limit, emit, self.catalog.secrets.scrub, records, cache=self.cache
        )

    # --- close --------------------------------------------------------------------------------

    async def aclose(self) -> list[Event]:
        """Close every server (at most once); one ``ToolServerStopped`` per server."""
        if self._closed:
            return []
        self._closed = True
        servers = list(self.servers.values())
        tails = await asyncio.gather(*(s.aclose() for s in servers), return_exceptions=True)
        stopped_at = time.time()
        return [
            ToolServerStopped(
                server=server.name,
                transport=server.config.transport,
                target=server.config.target,
                tools=tuple(info.name for info in server.tools),
                stderr=tail if isinstance(tail, str) else "",
                started_at=server.started_at,
                stopped_at=stopped_at,
            )
            for server, tail in zip(servers, tails, strict=True)
        ]


class AgentToolbox:
    """One agent's tools: the definitions offered to its model, and ``run_calls``."""

    def __init__(
        self,
        table: Mapping[str, Entry],
        limit: int,
        emit: Callable[[Event], None],
        scrub: Callable[[str], str],
        records: list[ToolCallRecord],
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.cache = cache
        self.table = table
        self.records = records
        self.emit = emit
        self.scrub = scrub
        self.slots = asyncio.Semaphore(limit)
        self.definitions = tuple(
            ToolDefinition(sent, entry.tool.description, entry.tool.parameters)
            for sent, entry in table.items()
        )

    async def run_calls(self, agent: str, turn: int, calls: Sequence[ToolCall]) -> ToolOutcome:
        if len(calls) == 1:  # no task per call for the common case
            outcomes = [await self._run_one(agent, turn, calls[0])]
        else:
            outcomes = list(
                await asyncio.gather(*(self._run_one(agent, turn, call) for call in calls))
            )
        messages: list[Message] = []
        failure = None
        for call, (text, failed) in zip(calls, outcomes, strict=True):
            messages.append(tool_result(call.id, text))
            if failed is not None and failure is None:
                failure = failed
        return ToolOutcome(tuple(messages), failure)

    async def _run_one(self, agent: str, turn: int, call: ToolCall) -> tuple[str, str | None]:
        """(what the model reads, the agent's failure when the tool says on_tool_error: fail)."""
        entry = self.table.get(call.name)
        label = entry.tool.label if entry is not None else call.name
        started = time.time()
        clock = time.monotonic()
        self.emit(ToolCallStarted(agent, turn, call.id, label, call.arguments, started))
        error: str | None = None
        text = ""
        status = "succeeded"
        try:
            if entry is None:
                raise ToolCallError(
                    f"there is no tool named '{call.name}'{did_you_mean(call.name, self.table)}; "
                    f"the tools are: {', '.join(self.table)}"
                )
            arguments = _parse_arguments(call)
            key = self._cache_key(agent, entry, arguments)
            hit = None if key is None or self.cache is None else self.cache.lookup(agent, key)
            if hit is not None:
                text = hit.response.text  # stored as it was returned: scrubbed and valid
            else:
                async with self.slots:
                    text = await entry.tool.invoke(arguments)
                if key is not None and self.cache is not None and self.cache.writes:
                    stored = valid_text(self.scrub(text))
                    self.cache.store(agent, key, ChatResponse(stored), 0.0)
        except asyncio.CancelledError:
            self._finish(agent, turn, call, label, "cancelled", started, clock, None, "cancelled")
            raise
        # Whatever a tool raises (SystemExit and KeyboardInterrupt from its code included) is
        # the tool's failure: the model reads it, and the agent's run goes on.
        except BaseException as failed:
            error = valid_text(
                self.scrub(
                    str(failed) if isinstance(failed, ToolCallError) else describe_exception(failed)
                )
            )
            status = "failed"
            text = f"error: {error}"
        else:
            text = valid_text(self.scrub(text))
        self._finish(
            agent, turn, call, label, status, started, clock, text if error is None else None, error
        )
        if error is not None and entry is not None and entry.fail_on_error:
            return text, f"tool {label} failed (on_tool_error: fail): {error}"
        return text, None

    def _cache_key(self, agent: str, entry: Entry, arguments: Any) -> RequestKey | None:
        """The key of a call to a tool that says ``cache: true`` while the cache reads."""
        if entry.cache_source is None or self.cache is None or not self.cache.reads:
            return None
        return tool_key(entry.cache_source, entry.tool.label, arguments)

    def _finish(
        self,
        agent: str,
        turn: int,
        call: ToolCall,
        label: str,
        status: str,
        started: float,
        clock: float,
        result: str | None,
        error: str | None,
    ) -> None:
        record = ToolCallRecord(
            turn=turn,
            call_id=call.id,
            tool=label,
            arguments=call.arguments[:HISTORY_LIMIT],
            status=status,
            started_at=started,
            duration=time.monotonic() - clock,
            result=None if result is None else result[:HISTORY_LIMIT],
            error=error,
        )
        self.records.append(record)
        self.emit(ToolCallFinished(agent, record))


def _parse_arguments(call: ToolCall) -> Mapping[str, Any]:
    try:
        value = call.parsed_arguments()
    except ValueError as error:
        raise ToolCallError(
            f"the arguments are not valid JSON ({error}); send a JSON object"
        ) from None
    except RecursionError:
        raise ToolCallError(
            "the arguments nest too deeply to be read; send a flatter JSON object"
        ) from None
    if not isinstance(value, dict):
        raise ToolCallError(f"the arguments must be a JSON object, not {type(value).__name__}")
    return value


def legal_name(name: str) -> str:
    """A name OpenAI accepts: letters, digits, '_' and '-', 1 to 64 of them."""
    cleaned = _ILLEGAL.sub("_", name)[:MAX_NAME]
    return cleaned or "tool"


def _listing(names: Iterable[str], limit: int = 20) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return (
        (shown + f", … {len(names) - limit} more") if len(names) > limit else (shown or "no tools")
    )


__all__ = ["AgentToolbox", "ToolRuntime", "legal_name"]
