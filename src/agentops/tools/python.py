"""Python functions as tools: ``python: "module:function"``, sync or async.

The module is imported with the workflow file's folder first on ``sys.path``.
The function's signature and docstring give the JSON schema the model sees
(descriptions from a Google-style ``Args:`` section or ``:param x:`` lines),
and a pydantic model built from the signature validates the model's arguments
before the call: an invalid argument is a tool error returned to the model,
the function is not called.

A plain function runs in a daemon thread of its own, so a call that hangs past
its timeout is abandoned (Python cannot stop a thread) without holding up the
end of the run or the exit of the process. A coroutine function runs on the
tools' event loop, a second loop in a daemon thread shared by every async tool
of the process (so a client a tool keeps between calls stays on one loop): a
call past its timeout, or cancelled by Ctrl-C, is cancelled there, and a tool
that blocks that loop (``time.sleep`` in ``async def``) is abandoned with it;
later calls get a new loop.

Whatever a tool does — raise any exception, ``sys.exit``, ``KeyboardInterrupt``,
return what cannot be written as JSON — is a ``ToolCallError`` for the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import re
import sys
import threading
import typing
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agentops.tools.base import ToolCallError, truncate
from agentops.workflow.suggest import did_you_mean


class ToolLoadError(Exception):
    """The function cannot be used as a tool; the message says why and what to do."""


@dataclass
class PythonTool:
    label: str
    base_name: str
    description: str
    parameters: Mapping[str, Any]
    timeout: float
    function: Callable[..., Any]
    arguments_model: type[BaseModel]
    argument_names: tuple[tuple[str, str], ...]  # (field in arguments_model, parameter name)
    is_async: bool

    async def invoke(self, arguments: Mapping[str, Any]) -> str:
        try:
            validated = self.arguments_model.model_validate(dict(arguments))
        except ValidationError as error:
            raise ToolCallError(f"invalid arguments: {describe_validation(error)}") from None
        kwargs = {parameter: getattr(validated, field) for field, parameter in self.argument_names}
        try:
            if self.is_async:
                text = await _on_tool_loop(self.function, kwargs, self.timeout)
            else:
                text = await _in_daemon_thread(self.function, kwargs, self.timeout, self.label)
        except TimeoutError:  # ours: the tool's own exceptions arrive as ToolCallError
            raise ToolCallError(
                f"no result within {self.timeout:g}s (the tool's timeout)"
            ) from None
        return text


def load_python_tool(label: str, target: str, folder: Path, *, timeout: float) -> PythonTool:
    """Import ``module:function`` (``folder`` first on sys.path) and describe it; raises ToolLoadError."""
    module_name, _, attribute = target.strip().partition(":")
    module = _import(module_name, folder)
    function: Any = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            candidates = [
                n
                for n in dir(function)
                if not n.startswith("_") and callable(getattr(function, n, None))
            ]
            hint = did_you_mean(part, candidates) or f'; check python: "{target}"'
            raise ToolLoadError(f"module '{module_name}' has no '{attribute}'{hint}")
        function = getattr(function, part)
    if not callable(function):
        raise ToolLoadError(
            f"'{target}' is {type(function).__name__}, not a function; name a function"
        )
    description, parameters, model, names = describe_function(function, label)
    is_async = inspect.iscoroutinefunction(function)
    return PythonTool(
        label, label, description, parameters, timeout, function, model, names, is_async
    )


def _import(module_name: str, folder: Path) -> Any:
    place = str(folder)
    if place not in sys.path:
        sys.path.insert(0, place)
    top = module_name.split(".")[0]
    cached = sys.modules.get(top)
    local = folder / f"{top}.py"
    if cached is not None and (local.exists() or (folder / top).is_dir()):
        # A module of this name imported from elsewhere (another workflow's folder) must not stand in.
        origin = getattr(cached, "__file__", None) or ""
        if not Path(origin).resolve().is_relative_to(folder.resolve()):
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise ToolLoadError(
                f"cannot import module '{module_name}': no such module in {folder} or on the Python path; "
                f"put {top}.py next to the workflow file, or install the package"
            ) from None
        raise ToolLoadError(
            f"importing '{module_name}' failed: {error}; install what it needs"
        ) from None
    except Exception as error:
        raise ToolLoadError(
            f"importing '{module_name}' raised {type(error).__name__}: {error}; fix the module"
        ) from None


def describe_function(
    function: Callable[..., Any], label: str
) -> tuple[str, dict[str, Any], type[BaseModel], tuple[tuple[str, str], ...]]:
    """(description, JSON schema of the arguments, pydantic model validating them, field → parameter)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as error:
        raise ToolLoadError(
            f"the signature of '{label}' cannot be read ({error}); wrap it in a def"
        ) from None
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: validate nothing rather than refuse the tool
        hints = {}
    summary, documented = parse_docstring(inspect.getdoc(function) or "")
    fields: dict[str, Any] = {}
    names: list[tuple[str, str]] = []
    for index, parameter in enumerate(signature.parameters.values()):
        if parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
            parameter.POSITIONAL_ONLY,
        ):
            raise ToolLoadError(
                f"'{label}' takes {parameter}: a tool's arguments are named; give every parameter a name "
                "that can be passed by keyword"
            )
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        # An alias keeps the parameter's own name in the schema while the field's name
        # cannot shadow BaseModel's attributes (a parameter called "json" or "copy").
        field_name = f"argument_{index}"
        fields[field_name] = (
            annotation,
            Field(default, alias=parameter.name, description=documented.get(parameter.name)),
        )
        names.append((field_name, parameter.name))
    try:
        model = create_model(
            f"{label}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        schema = model.model_json_schema(by_alias=True)
    except Exception as error:
        raise ToolLoadError(
            f"the parameters of '{label}' cannot be described as JSON: {error}"
        ) from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return summary or f"The Python function {label}.", schema, model, tuple(names)


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_GOOGLE_ARG = re.compile(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_ARG = re.compile(r"^:param\s+(?:\S+\s+)?(\w+):\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (text up to the first section or ``:param``) and each documented argument."""
    summary: list[str] = []
    arguments: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in doc.splitlines():
        if _SECTION.match(line.strip()):
            in_args, current = True, None
            continue
        sphinx = _SPHINX_ARG.match(line.strip())
        if sphinx:
            current = sphinx.group(1)
            arguments[current] = sphinx.group(2).strip()
            continue
        if in_args:
            google = _GOOGLE_ARG.match(line)
            if google:
                current = google.group(1).lstrip("*")
                arguments[current] = google.group(3).strip()
            elif line.strip() and current is not None and line.startswith((" ", "\t")):
                arguments[current] = (arguments[current] + " " + line.strip()).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                in_args, current = False, None  # another section begins
            continue
        if (
            not arguments
            and not line.strip().startswith(":")
            and re.match(r"^\w+:\s*$", line.strip()) is None
        ):
            summary.append(line.strip())
    return " ".join(" ".join(summary).split()), arguments


def describe_validation(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        got = (
            f" (got {item['input']!r})"
            if item["type"] not in ("missing", "extra_forbidden")
            else ""
        )
        message = "unexpected argument" if item["type"] == "extra_forbidden" else item["msg"]
        parts.append(f"{where}: {message}{got}"[:300])
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def as_text(value: Any) -> str:
    """What the model reads: text as it is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return pydantic_core.to_json(value, fallback=repr).decode("utf-8")


def _result(value: Any) -> str:
    """The tool's value as the model reads it (cut to size); a ToolCallError if it cannot be written."""
    try:
        return truncate(as_text(value))
    except Exception as error:
        if isinstance(value, bytes | bytearray):
            raise ToolCallError("the tool returned bytes that are not UTF-8 text") from None
        raise ToolCallError(
            f"the tool returned a value that cannot be written as JSON ({error})"
        ) from None


def _failure(error: BaseException) -> ToolCallError:
    """What the model reads when the tool raised ``error`` — whatever it is, even SystemExit."""
    if isinstance(error, ToolCallError):
        return error
    name = type(error).__name__
    if isinstance(error, Exception):
        return ToolCallError(f"{name}: {error}")
    return ToolCallError(
        f"the tool raised {name}({error})" if str(error) else f"the tool raised {name}"
    )


async def _in_daemon_thread(
    function: Callable[..., Any], kwargs: dict[str, Any], timeout: float, label: str
) -> str:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()

    def deliver(text: str, error: ToolCallError | None) -> None:
        if future.done():  # timed out or cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(text)

    def work() -> None:
        try:
            text, error = _result(function(**kwargs)), None
        except BaseException as caught:  # SystemExit too: delivered to the caller, not lost here
            text, error = "", _failure(caught)
        with contextlib.suppress(RuntimeError):  # the loop may be closed: the run is over
            loop.call_soon_threadsafe(deliver, text, error)

    threading.Thread(target=work, name=f"tool {label}", daemon=True).start()
    async with asyncio.timeout(timeout):
        return await future


PING_TIMEOUT = 0.5  # a tools' loop that cannot run a callback this soon is blocked


class _ToolLoop:
    """An event loop in a daemon thread, where async tools run (see the module docstring)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.abandoned: list[_Call] = []  # calls given up on (timeout, Ctrl-C) that may still run
        threading.Thread(target=self._serve, name="agentops async tools", daemon=True).start()

    def _serve(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def responsive(self) -> bool:
        """False if a call given up on still runs and the loop cannot answer a ping: it is blocked."""
        if all(call.finished for call in self.abandoned):
            self.abandoned.clear()
            return True
        ping = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop)
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await asyncio.wrap_future(ping)
        except TimeoutError:
            return False
        self.abandoned.clear()  # still running, but not blocking: no need to ask again
        return True

    def retire(self) -> None:
        """Stop the loop once its tasks are done (a blocked one first has to come back)."""
        self.loop.call_soon_threadsafe(self._stop_when_idle)

    def _stop_when_idle(self) -> None:
        if any(not task.done() for task in asyncio.all_tasks(self.loop)):
            self.loop.call_later(1.0, self._stop_when_idle)
        else:
            self.loop.stop()


class _Call:
    finished = False  # set on the tools' loop, read on the caller's


_tool_loop: _ToolLoop | None = None
_tool_loop_lock = threading.Lock()


async def _current_tool_loop() -> _ToolLoop:
    global _tool_loop
    current = _tool_loop
    if current is not None and await current.responsive():
        return current
    with _tool_loop_lock:
        if _tool_loop is None or _tool_loop is current:  # not replaced meanwhile by another caller
            if current is not None:
                current.retire()
            _tool_loop = _ToolLoop()
        return _tool_loop


async def _on_tool_loop(
    function: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any], timeout: float
) -> str:
    """Run an async tool on the tools' loop; its text, or ToolCallError, or TimeoutError."""
    tool_loop = await _current_tool_loop()
    call = _Call()

    async def guarded() -> str:
        try:
            return _result(await function(**kwargs))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the call was given up on
                raise
            raise _failure(asyncio.CancelledError()) from None  # raised by the tool itself
        except BaseException as error:  # SystemExit and KeyboardInterrupt would stop the loop
            raise _failure(error) from None
        finally:
            call.finished = True

    future = asyncio.run_coroutine_threadsafe(guarded(), tool_loop.loop)
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.wrap_future(future)  # cancelling this cancels the task there
    finally:
        if not call.finished:
            tool_loop.abandoned.append(call)


__all__ = [
    "PythonTool",
    "ToolLoadError",
    "as_text",
    "describe_function",
    "load_python_tool",
    "parse_docstring",
]
