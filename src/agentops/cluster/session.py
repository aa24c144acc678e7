"""Connecting to Ray for one command, and leaving it as it was found.

``open_cluster`` is called once the workflow is prepared (so the variables it reads are
known) and before anything is spent:

- Ray not installed: ``ConfigurationError`` (exit 2) naming the extra.
- An address (``--ray-address``, else ``RAY_ADDRESS``): ``auto``, ``HOST:PORT`` or
  ``ray://HOST:PORT``, as Ray takes it. A ``HOST:PORT`` is probed first with a short TCP
  connect, since Ray keeps retrying an address where nothing listens; nothing there is exit 2
  naming it. The connection is closed when the command ends; the cluster keeps running.
- No address: a local Ray is started for the command and stopped after it, in Ray's
  loopback-only mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, what Ray does on macOS):
  every process of it binds to 127.0.0.1, with no dashboard and no usage statistics.
- A process already connected (``ray.init`` called by the program using the API) is used as
  it is, and left connected.

What travels with the job (its ``runtime_env``): the workflow's folder as the working
directory when it has tools (``python:`` tools import there, stdio MCP servers start there),
without history databases, virtual environments or the batch's data file; and, as
environment variables, those the workflow reads (provider keys, endpoints, ``${VAR}`` in MCP
``env`` and ``headers``), never as task arguments, which Ray may log or spill to disk. A
process that connected itself gives the variables to each task instead (Ray takes a folder
only when a job starts, so its ``python:`` tools must already import on the workers).

Every agent's ``resources:`` (one CPU when unset) must fit on one live node: an agent no
node can take would wait forever, so it is exit 2 here, naming the agent and the nodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agentops.cluster.ledger import LedgerLimits, Snapshot, start_ledger
from agentops.cluster.runner import RayAgentRunner
from agentops.cluster.worker import Workspace
from agentops.errors import ConfigurationError, UsageError, describe_exception
from agentops.providers.registry import ProviderRegistry
from agentops.tools.environment import VARIABLE
from agentops.workflow.loader import LoadedWorkflow
from agentops.workflow.spec import Agent, Workflow

LOOPBACK = "127.0.0.1"
PROBE_SECONDS = 3.0
INSTALL = "pip install 'agentops[ray]'"
DRIVER = "driver"  # the driver's holder name in the ledger: it reads, never reserves
# Never sent with the workflow's folder: the driver's history, environments, caches.
EXCLUDED = [
    "*.db",
    "*.db-wal",
    "*.db-shm",
    "*.db-journal",
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "node_modules",
]


def import_ray() -> Any:
    """The ``ray`` module, or exit 2 naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigurationError(
            f"--executor ray needs Ray, which is not installed here: {INSTALL}"
        ) from None
    return ray


class Cluster:
    """One run's or batch's work on Ray: ``start`` makes its ledger and its agent runner;
    ``close`` leaves Ray as it was found."""

    def __init__(
        self,
        ray: Any,
        loaded: LoadedWorkflow,
        *,
        where: str,
        owned: bool,
        options: Mapping[str, Any],
    ) -> None:
        self.ray = ray
        self.loaded = loaded
        self.where = where  # "the Ray cluster at HOST:PORT", for messages
        self.owned = owned  # connected (or started) by this command: disconnect at the end
        self.options = dict(options)  # every task's options (the variables, when not owned)
        self._actors: list[Any] = []

    def start(
        self, *, cap: float | None, spent: float = 0.0
    ) -> tuple[LedgerLimits, RayAgentRunner]:
        """The ledger (every call of the run or batch reserves there) and the runner of agent runs."""
        actor = start_ledger(self.ray, cap=cap, spent=spent)
        self._actors.append(actor)
        limits = LedgerLimits(actor, DRIVER, cap)
        limits.latest = Snapshot(spent=spent)
        workflow = self.loaded.workflow
        workspace = self.ray.put(Workspace(workflow, self.loaded.source))
        runner = RayAgentRunner(self.ray, workflow, workspace, limits, self.options)
        return limits, runner

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):  # gone already
                self.ray.kill(actor)
        self._actors = []
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()

    async def aclose(self) -> None:
        self.close()


def open_cluster(
    loaded: LoadedWorkflow,
    registry: ProviderRegistry,
    address: str | None,
    *,
    exclude: Iterable[str | Path | None] = (),
) -> Cluster:
    """Ray for this command (see the module docstring); ``exclude``: files of the workflow's
    folder that must not travel (the batch's data file)."""
    workflow = loaded.workflow
    variables = _variables(workflow, registry)
    address = (address or os.environ.get("RAY_ADDRESS") or "").strip() or None
    local = address is None and "ray" not in sys.modules
    if local:
        # Ray's loopback-only mode (what it does on macOS): read once, when ray is imported, by
        # this process and by every process of the local Ray it starts, all bound to 127.0.0.1.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = import_ray()
    if ray.is_initialized():
        options = {"runtime_env": {"env_vars": variables}} if variables else {}
        cluster = Cluster(
            ray, loaded, where="the Ray this process is connected to", owned=False, options=options
        )
    else:
        runtime_env: dict[str, Any] = {"env_vars": variables}
        if workflow.tools:
            folder = loaded.folder
            runtime_env["working_dir"] = str(folder)
            runtime_env["excludes"] = [*EXCLUDED, *_inside(folder, exclude)]
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        settings: dict[str, Any] = {
            "runtime_env": runtime_env,
            "logging_level": logging.ERROR,
            "log_to_driver": False,
        }
        if address is None:
            where = f"the local Ray started for this command ({LOOPBACK})"
            settings.update(include_dashboard=False, _node_ip_address=LOOPBACK)
        else:
            where = f"the Ray cluster at {address}"
            probe(address)
            settings["address"] = address
        try:
            ray.init(**settings)
        except Exception as error:
            raise ConfigurationError(_init_failure(address, error)) from None
        _cluster_news_to_stderr()
        cluster = Cluster(ray, loaded, where=where, owned=True, options={})
    try:
        check_resources(workflow, ray.nodes(), cluster.where)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _cluster_news_to_stderr() -> None:
    """Ray's driver prints what the cluster reports (a node marked dead, a worker killed for
    memory) on stdout, where ``--json`` output and the terminal view are: send it to stderr.
    Ray's own function is wrapped (a private one: left alone if it is not there)."""
    try:
        from ray._private import worker
    except ImportError:
        return
    show = getattr(worker, "print_to_stdstream", None)
    if show is None or getattr(show, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        show({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def probe(address: str) -> None:
    """Something must listen at ``HOST:PORT`` (or ``ray://HOST:PORT``) before Ray is handed it:
    Ray would keep retrying an address where nothing does."""
    if address in ("auto", "local"):
        return  # Ray looks these up itself, and says at once when there is nothing
    target = address.removeprefix("ray://")
    host, colon, port = target.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"--ray-address {address}: give auto, HOST:PORT (the head's GCS port, 6379 by "
            "default) or ray://HOST:PORT"
        )
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except OSError as error:
        why = "nothing answered in time" if isinstance(error, TimeoutError) else error.strerror
        raise ConfigurationError(
            f"no Ray cluster at {address}: {why or error}; start one there (ray start --head) "
            "or give another --ray-address (or RAY_ADDRESS)"
        ) from None


def check_resources(workflow: Workflow, nodes: Iterable[Mapping[str, Any]], where: str) -> None:
    """Every agent's ``resources:`` fit on one live node, or exit 2 naming the agent."""
    alive = [dict(node.get("Resources") or {}) for node in nodes if node.get("Alive")]
    for agent in workflow.agents:
        need = needs(agent)
        if any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in alive):
            continue
        largest = "; ".join(_shown(node) for node in alive) or "no live node"
        raise ConfigurationError(
            f"agent '{agent.name}' needs {_shown(need)} on one node, but no node of {where} "
            f"has that (nodes: {largest}); lower its resources: or add a node that has them"
        )


def needs(agent: Agent) -> dict[str, float]:
    """What one run of ``agent`` holds on a node, in Ray's resource names."""
    resources = agent.resources
    if resources is None:
        return {"CPU": 1.0}
    need = {"CPU": 1.0 if resources.num_cpus is None else resources.num_cpus}
    if resources.num_gpus:
        need["GPU"] = resources.num_gpus
    need.update(resources.custom)
    return {name: amount for name, amount in need.items() if amount > 0}


def _shown(resources: Mapping[str, float]) -> str:
    names = {"CPU": "num_cpus", "GPU": "num_gpus"}
    shown = [
        f"{names.get(k, k)} {v:g}"
        for k, v in sorted(resources.items())
        if k in names or not (k.startswith("node:") or k in ("memory", "object_store_memory"))
    ]
    return ", ".join(shown) or "nothing"


def _variables(workflow: Workflow, registry: ProviderRegistry) -> dict[str, str]:
    """The variables the workflow reads, as set here: what its providers and tools need there."""
    names = set(registry.read_variables)
    for spec in workflow.tools.values():
        if spec.mcp is not None:
            for value in [*spec.mcp.env.values(), *spec.mcp.headers.values()]:
                names.update(VARIABLE.findall(value))
    return {name: registry.env[name] for name in sorted(names) if name in registry.env}


def _inside(folder: Path, paths: Iterable[str | Path | None]) -> list[str]:
    """``paths`` that lie in ``folder``, as patterns anchored there."""
    patterns = []
    for path in paths:
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved.is_relative_to(folder):
            patterns.append("/" + resolved.relative_to(folder).as_posix())
    return patterns


def _init_failure(address: str | None, error: BaseException) -> str:
    if address is None:
        return f"could not start a local Ray for this command: {describe_exception(error)}"
    return (
        f"could not connect to the Ray cluster at {address}: {describe_exception(error)}; "
        "check --ray-address (or RAY_ADDRESS)"
    )


__all__ = [
    "INSTALL",
    "LOOPBACK",
    "Cluster",
    "check_resources",
    "import_ray",
    "needs",
    "open_cluster",
    "probe",
]
