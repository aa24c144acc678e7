"""The MCP SDK's log records: masked, without tracebacks, kept with the server they concern.

The SDK logs every line a stdio server prints to stdout that is not a protocol
message, with a traceback whose text holds the line (so a ``${VAR}`` secret the
server printed would be shown as is, and a server printing garbage floods the
terminal), and it logs its transport's problems. A filter on its loggers masks
each record and drops its traceback. A warning or error made on behalf of
a server (in its host task and the tasks that starts, or in a call to it) is not
shown: it is kept in that server's ``ServerLog``, which the history records with
the server's stderr. Any other record goes on, masked with the secrets of every
running server.

No ``mcp`` import here: the filter works on the records alone.
"""

from __future__ import annotations

import logging
import weakref
from contextvars import ContextVar

from agentops.tools.environment import Secrets

# The loggers (and those under them): mcp.client.session logs as "client"; httpx2 is its HTTP client.
SDK_LOGGERS = ("mcp", "client", "httpx2")
# mcp.client.stdio logs this, with a traceback, for each stdout line that is not a message.
_PARSE_FAILURE = "Failed to parse JSONRPC message"
NOTES_KEPT = 10
LINE_LIMIT = 300


class ServerLog:
    """What the SDK said about one server: its stdout lines that are not messages, and its warnings."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets  # the run's own object: keys added to it later are masked too
        self.noise = 0
        self.first_noise = ""
        self.notes: list[str] = []

    def stdout_noise(self) -> str:
        """``wrote 3 lines to stdout that are not MCP messages (ignored), the first: ...``, or ''."""
        if self.noise == 1:
            return (
                f"wrote 1 line to stdout that is not an MCP message (ignored): {self.first_noise}"
            )
        if self.noise:
            return f"wrote {self.noise} lines to stdout that are not MCP messages (ignored), the first: {self.first_noise}"
        return ""

    def lines(self) -> list[str]:
        """Lines to add to the server's stderr in the history."""
        noise = self.stdout_noise()
        lines = [f"[agentops] the server {noise}"] if noise else []
        return lines + [f"[agentops] the MCP SDK: {note}" for note in self.notes]

    def keep(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith(_PARSE_FAILURE):
            self.noise += 1
            if self.noise == 1:
                self.first_noise = _one_line(self.secrets.scrub(_rejected_line(record)))
        elif len(self.notes) < NOTES_KEPT:
            self.notes.append(_one_line(self.secrets.scrub(_describe(record))))


SERVING: ContextVar[ServerLog | None] = ContextVar("agentops_mcp_server", default=None)
_running: weakref.WeakSet[ServerLog] = weakref.WeakSet()


class _Filter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        log = SERVING.get()
        if log is not None and record.levelno >= logging.WARNING:
            log.keep(record)
            return False
        text = _describe(record)
        for source in [log] if log is not None else list(_running):
            text = source.secrets.scrub(text)
        record.msg, record.args = text, None
        record.exc_info = record.exc_text = record.stack_info = None
        return True


_FILTER = _Filter()


def register(log: ServerLog) -> None:
    """Put the filter on the SDK's loggers (those that exist by now), and mask with ``log``'s secrets."""
    _running.add(log)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (
            isinstance(logger, logging.Logger)
            and name.partition(".")[0] in SDK_LOGGERS
            and _FILTER not in logger.filters
        ):
            logger.addFilter(_FILTER)  # a logger's filter sees only its own records: each needs it


def unregister(log: ServerLog) -> None:
    _running.discard(log)


def _describe(record: logging.LogRecord) -> str:
    """The message, and the exception's type and first line (later lines may show a cut input)."""
    try:
        text = record.getMessage()
    except Exception:  # arguments that do not fit the format: a log call must not fail
        text = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        first = (str(error).splitlines() or [""])[0]
        text += f": {type(error).__name__}" + (f": {first}" if first else "")
    return text


def _rejected_line(record: logging.LogRecord) -> str:
    """The stdout line the SDK could not parse, whole (pydantic's message would show it cut, maybe mid-secret)."""
    error = record.exc_info[1] if record.exc_info else None
    errors = getattr(error, "errors", None)
    try:
        line = errors()[0]["input"] if callable(errors) else None
    except Exception:  # not pydantic's ValidationError after all
        line = None
    return line if isinstance(line, str) else _describe(record)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LINE_LIMIT else text[: LINE_LIMIT - 1] + "…"


__all__ = ["SDK_LOGGERS", "SERVING", "ServerLog", "register", "unregister"]
