"""Is the process that recorded a run still alive? The rule every listing uses.

A run is recorded ``running`` with the pid, hostname and (where the system
tells) start time of the recording process. If the run is still ``running`` but
that process is gone — same hostname, and the pid is not alive or now belongs
to a process that started at another time — the run was interrupted by a crash
or a kill, and is shown (and resumable) as ``interrupted``.

A run recorded on another host (a team sharing a PostgreSQL history) cannot have its pid
checked: its process writes ``heartbeat_at`` at least every ``HEARTBEAT_SECONDS`` while it
runs, and a run whose last heartbeat is older than ``STALE_AFTER_SECONDS`` reads
``interrupted`` too. (Clocks of the hosts are taken to agree within a minute.) A run recorded
before heartbeats existed stays ``running``.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from functools import cache
from pathlib import Path

from agentops.store.timestamps import from_iso

RUNNING = "running"
INTERRUPTED = "interrupted"
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 120.0  # four heartbeats missed: the process is gone (or cut off)


@cache
def hostname() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """An identity for the process ``pid`` that a reused pid does not share (Linux:
    boot id + start time in clock ticks); None where the system does not tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat.rpartition(")")[2].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


@cache
def _process_identity(pid: int) -> tuple[int, str, str | None]:
    return pid, hostname(), process_start(pid)


def this_process() -> tuple[int, str, str | None]:
    """``(pid, hostname, process_start)`` of this process, as runs record it: read from /proc
    once per process, not once per run (a batch records thousands of runs)."""
    return _process_identity(os.getpid())  # keyed by pid: a forked child reads its own


def pid_is_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return _windows_pid_is_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    except (OSError, OverflowError):
        return False
    return True


def recorder_is_alive(pid: int | None, recorded_start: str | None) -> bool:
    """Whether the process ``pid`` (on this host) that recorded a run is still that process."""
    if pid is None or not pid_is_alive(pid):
        return False
    if recorded_start is None:
        return True
    current = process_start(pid)
    return current is None or current == recorded_start


def effective_status(
    status: str,
    pid: int | None,
    host: str | None,
    recorded_start: str | None = None,
    heartbeat_at: str | None = None,
    *,
    now: float | None = None,
) -> str:
    """``status`` as recorded, except a ``running`` run whose process on this host is gone, or
    whose process elsewhere has not written a heartbeat for ``STALE_AFTER_SECONDS``, reads
    ``interrupted``."""
    if status != RUNNING or host is None:
        return status
    if host == hostname():
        return RUNNING if recorder_is_alive(pid, recorded_start) else INTERRUPTED
    beat = from_iso(heartbeat_at)
    if beat is None:
        return status  # no heartbeat to go by
    fresh = (time.time() if now is None else now) - beat < STALE_AFTER_SECONDS
    return RUNNING if fresh else INTERRUPTED


def _windows_pid_is_alive(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes

    process_query_limited_information = 0x1000
    still_active = 259
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
