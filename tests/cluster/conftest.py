"""The Ray tests' cluster: a head and one worker node of one CPU each, on 127.0.0.1, started
once for the session (about 4 s) and shared; a test that kills a node adds its own first."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.support.ray_cluster import LocalCluster, local_cluster


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[LocalCluster]:
    if importlib.util.find_spec("ray") is None:  # not imported here: see tests.support.ray_cluster
        pytest.skip("the [ray] extra is not installed")
    with local_cluster(workers=1, cpus=1) as cluster:
        yield cluster
