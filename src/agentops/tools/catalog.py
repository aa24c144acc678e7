"""The workflow's ``tools:`` made ready to run, before any model call.

Python tools are imported and described (a module that does not import, a name
that is not callable: ``file:line`` errors); MCP servers get their ``${VAR}``
expanded from the environment (a variable that is not set: a ``file:line``
error naming it), their working directory (the workflow file's folder) and
their timeouts. Nothing is started here: ``runtime`` starts the servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agentops.errors import Diagnostic, WorkflowError
from agentops.tools.environment import MissingVariableError, Secrets, expand
from agentops.tools.python import PythonTool, ToolLoadError, load_python_tool
from agentops.workflow.loader import LoadedWorkflow
from agentops.workflow.spec import ToolSpec


@dataclass(frozen=True)
class ServerSpec:
    """An MCP server as configured, ``${VAR}`` expanded (so: secret)."""

    name: str
    spec: ToolSpec
    command: str | None
    args: list[str]
    env: dict[str, str] = field(repr=False)
    url: str | None
    headers: dict[str, str] = field(repr=False)


@dataclass
class ToolCatalog:
    loaded: LoadedWorkflow
    python: dict[str, PythonTool]
    servers: dict[str, ServerSpec]
    secrets: Secrets

    @property
    def specs(self) -> Mapping[str, ToolSpec]:
        return self.loaded.workflow.tools


def used_tools(loaded: LoadedWorkflow, agents: Iterable[str]) -> set[str]:
    """The names under ``tools:`` that the given agents pick (``kb.lookup`` uses ``kb``)."""
    workflow = loaded.workflow
    return {pick.partition(".")[0] for name in agents for pick in workflow.agent(name).tools}


def load_catalog(
    loaded: LoadedWorkflow,
    env: Mapping[str, str],
    *,
    only: set[str] | None = None,
    expand_variables: bool = True,
    secrets: Secrets | None = None,
) -> ToolCatalog:
    """Load the tools named in ``only`` (None: all). Raises WorkflowError with every problem.
    ``secrets``: the run's, which the ``${VAR}`` values join (None: a set of their own)."""
    problems: list[Diagnostic] = []
    python: dict[str, PythonTool] = {}
    servers: dict[str, ServerSpec] = {}
    secrets = secrets if secrets is not None else Secrets()
    for name, spec in loaded.workflow.tools.items():
        if only is not None and name not in only:
            continue
        if spec.python is not None:
            try:
                python[name] = load_python_tool(
                    name, spec.python, loaded.folder, timeout=spec.timeout
                )
            except ToolLoadError as error:
                problems.append(
                    loaded.diagnostic(("tools", name, "python"), f"tools.{name}.python: {error}")
                )
            continue
        assert spec.mcp is not None
        values: dict[str, dict[str, str]] = {"env": {}, "headers": {}}
        for section, mapping in (("env", spec.mcp.env), ("headers", spec.mcp.headers)):
            for key, raw in mapping.items():
                if not expand_variables:
                    values[section][key] = raw
                    continue
                try:
                    value, used = expand(raw, env)
                except MissingVariableError as missing:
                    problems.append(
                        loaded.diagnostic(
                            ("tools", name, "mcp", section, key),
                            f"tools.{name}.mcp.{section}.{key} uses ${{{missing.variable}}}, which is not set; "
                            f"set the environment variable {missing.variable} (it is read when the run starts "
                            "and never recorded)",
                        )
                    )
                    continue
                secrets.add(used)
                values[section][key] = value
        servers[name] = ServerSpec(
            name,
            spec,
            spec.mcp.command,
            list(spec.mcp.args),
            values["env"],
            spec.mcp.url,
            values["headers"],
        )
    if problems:
        raise WorkflowError(problems)
    return ToolCatalog(loaded, python, servers, secrets)


__all__ = ["ServerSpec", "ToolCatalog", "load_catalog", "used_tools"]
