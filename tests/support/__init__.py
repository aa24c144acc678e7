"""Code the tests share that is not a fixture: workflow builders, synthetic events, readers of
the history file, real processes and servers. Fixtures live in the ``conftest.py`` files."""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


def free_port() -> int:
    """A loopback port nothing listens on (free when asked: for a server to start on, or a
    connection to be refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
