"""A real PostgreSQL server for the tests, started by them in a temporary directory.

The Debian ``postgresql`` package's ``initdb`` and ``pg_ctl`` (found under
``/usr/lib/postgresql/*/bin``, by ``pg_config --bindir``, or on ``PATH``) set up a cluster
that listens on 127.0.0.1 only, on a free port, with a password (scram) for TCP
connections: the tests use URLs with a password in them, so that a password printed
anywhere fails a test. Both refuse to run as root, so under root they run as the
``postgres`` user in a directory handed to it. ``fsync`` is off: a test database needs no
durability, and ``CREATE DATABASE`` (one per test) is then a few milliseconds.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "agentops"
PASSWORD = "pw-never-printed-7f3a"  # distinctive: a test greps every output for it


def server_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        candidates.append(bindir)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster: ``url(dbname)`` connects to one of its databases."""

    bindir: Path
    directory: Path
    port: int
    _databases: itertools.count[int]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, dbname: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@{self.host}:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new, empty database; returns its name."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._databases)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def stop(self) -> None:
        _as_postgres(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_server() -> PostgresServer:
    """initdb + pg_ctl start in a new temporary directory; raises RuntimeError with the log."""
    bindir = server_binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl)")
    directory = Path(tempfile.mkdtemp(prefix="agentops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    password_file = directory / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres", "postgres")
    data = directory / "data"
    _as_postgres(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    for _ in range(5):  # a free port may be taken before the server binds it: try another
        port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        started = _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(directory / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=False,
        )
        if started.returncode == 0:
            return PostgresServer(bindir, directory, port, itertools.count(1))
    log = (directory / "log").read_text(errors="replace")[-2000:]
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start:\n{log}")


def _as_postgres(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """initdb and pg_ctl refuse root: under root they run as the ``postgres`` user."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result
