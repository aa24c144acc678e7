"""A Ray cluster on this machine, for the tests and the benchmarks: a head and worker nodes,
every one bound to 127.0.0.1, with few CPUs each.

``ray.cluster_utils.Cluster`` starts each node's processes from this one; with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's loopback-only mode, read when ray is imported)
they all bind to 127.0.0.1, and so does every driver started from here (``RAY_ENV`` goes
into the environment of the ``agentops`` processes the tests start). Without it Ray
rewrites 127.0.0.1 to the machine's other address. ``start`` checks that every node reports
127.0.0.1 before anything runs on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class LocalCluster:
    """A running cluster: its GCS ``address`` and the ids of its live nodes, the head's first."""

    cluster: Any  # ray.cluster_utils.Cluster
    address: str
    node_ids: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.node_ids[0]

    def add_node(self, cpus: int = 1) -> tuple[Any, str]:
        """Another worker node (the node's handle, and its id)."""
        node = self.cluster.add_node(num_cpus=cpus, node_ip_address=LOOPBACK)
        self.cluster.wait_for_nodes()
        node_id = str(node.node_id)
        self.node_ids.append(node_id)
        return node, node_id

    def remove_node(self, node: Any, node_id: str) -> None:
        """Kill every process of a node at once, as a lost machine: its worker processes with
        SIGKILL first (left to themselves they notice their raylet is gone only a second or so
        later, and may finish a call meanwhile), then Ray's own (``allow_graceful=False``)."""
        own = [info.process.pid for infos in node.all_processes.values() for info in infos]
        for pid in _descendants(own):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.cluster.remove_node(node, allow_graceful=False)
        self.node_ids.remove(node_id)


def _descendants(roots: list[int]) -> list[int]:
    """Every process below ``roots``, from ``/proc`` (the worker processes a raylet started)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    waiting = list(roots)
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child)
    return found


def loopback_nodes(address: str) -> list[dict[str, Any]]:
    """The live nodes of the cluster at ``address``, each checked to be on 127.0.0.1."""
    import ray

    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
    finally:
        ray.shutdown()
    addresses = {node["NodeManagerAddress"] for node in nodes}
    assert addresses == {LOOPBACK}, f"Ray nodes outside loopback: {sorted(addresses)}"
    return nodes


@contextmanager
def local_cluster(
    workers: int = 1, cpus: int = 1, head_cpus: int | None = None
) -> Iterator[LocalCluster]:
    """A head (of ``head_cpus``, default ``cpus``: 0 keeps agent runs off it) and ``workers``
    worker nodes of ``cpus`` CPUs each, all on 127.0.0.1."""
    os.environ.update(RAY_ENV)  # before ray is imported: it reads them then
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    # Imported earlier, without RAY_ENV, Ray would put the nodes on the machine's other address.
    assert not ray_constants.ENABLE_RAY_CLUSTER, "ray was imported before RAY_ENV was set"

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": cpus if head_cpus is None else head_cpus,
            "node_ip_address": LOOPBACK,
            "include_dashboard": False,
        },
    )
    try:
        for _ in range(workers):
            cluster.add_node(num_cpus=cpus, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes()
        nodes = loopback_nodes(cluster.address)
        assert len(nodes) == workers + 1, nodes
        head = str(cluster.head_node.node_id)
        ids = sorted((str(node["NodeID"]) for node in nodes), key=lambda n: n != head)
        yield LocalCluster(cluster, cluster.address, ids)
    finally:
        cluster.shutdown()
