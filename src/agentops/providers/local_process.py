"""The run's side of the local model's worker processes: start, stream, notice a crash, stop.

A crash in llama.cpp's native code (SIGSEGV, SIGILL, the OOM killer's SIGKILL)
must cost one attempt, not the run: each GGUF file is served by a worker process
(``local_worker``), one per file per run, started on first use. When it dies, every
call in flight on it fails with ``ModelCrashedError`` (transient, so the engine
retries) and the next call starts a fresh worker. Workers never outlive the run:
``close`` ends them, and a worker whose stdin closes (the run exited or was
killed) exits by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from agentops.errors import BadRequestError, ModelCrashedError, ModelNotFoundError, ServerError

START_TIMEOUT = 120.0  # seconds to load a model on a busy 2-core machine
STOP_TIMEOUT = 5.0
CRASH_HINT = (
    "a retry starts a fresh worker; if it crashes every time, llama-cpp-python was probably built "
    "for another CPU: rebuild it portably with scripts/setup.sh (docs/providers.md: 'When the local model crashes')"
)
_STDERR_TAIL = 300


def _death(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        if -returncode == signal.SIGKILL:
            return f"was killed by {name} (often the out-of-memory killer)"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class LocalWorker:
    """One worker process serving one GGUF file; calls are answered one at a time, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.process: asyncio.subprocess.Process | None = None
        # A file, not a pipe: a full pipe would block the worker. It lives as long as the worker.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._calls: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._next_id = 0
        self._reader: asyncio.Task[None] | None = None
        self.crash: ModelCrashedError | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.crash is None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentops.providers.local_worker",
            str(self.path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # Ctrl-C goes to the run, which decides; not to the worker
        )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise ServerError(
                f"the local model {self.path.name} did not load within {START_TIMEOUT:g}s"
            ) from None
        first: dict[str, Any] = json.loads(line) if line.strip() else {}
        if not first.get("ready"):
            await self.close()
            if "failed" in first:
                raise ModelNotFoundError(first["failed"])
            assert self.process.returncode is not None
            raise ModelCrashedError(
                f"the local model worker for {self.path.name} {_death(self.process.returncode)} while loading"
                f"{self._stderr_tail()}; {CRASH_HINT}"
            )
        self._reader = asyncio.create_task(self._read(), name=f"local-worker:{self.path.name}")

    async def complete(
        self, payload: dict[str, Any], on_text: Callable[[str], None]
    ) -> dict[str, Any]:
        """Send one request; stream its text to ``on_text``; return the final message."""
        if not self.alive:
            raise self.crash or ModelCrashedError(
                f"the local model worker for {self.path.name} is not running"
            )
        self._next_id += 1
        number = self._next_id
        answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._calls[number] = answers
        try:
            self._send({"id": number, **payload})
            while True:
                message = await answers.get()
                if "text" in message:
                    on_text(message["text"])
                elif "done" in message:
                    return message
                elif message.get("kind") == "bad_request":
                    raise BadRequestError(message["error"])
                elif "crash" in message:
                    assert self.crash is not None
                    raise self.crash
                else:
                    raise ServerError(
                        f"the local model {self.path.name} failed: {message['error']}"
                    )
        except asyncio.CancelledError:
            if self.alive:
                self._send({"cancel": number})  # it stops at its next token, freeing the model
            raise
        finally:
            del self._calls[number]

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode("utf-8"))

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            answers = self._calls.get(message.get("id", -1))
            if answers is not None:  # else: the tail of a call cancelled meanwhile
                answers.put_nowait(message)
        returncode = await self.process.wait()
        self.crash = ModelCrashedError(
            f"the local model worker for {self.path.name} (pid {self.process.pid}) {_death(returncode)} "
            f"mid-answer{self._stderr_tail()}; {CRASH_HINT}"
        )
        for answers in self._calls.values():
            answers.put_nowait({"crash": True})

    def _stderr_tail(self) -> str:
        self._stderr.seek(0, 2)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return f" (its last words: {lines[-1].strip()!r})" if lines else ""

    async def close(self) -> None:
        """Stop the worker: closing stdin ends it at once; kill it if it does not go."""
        process = self.process
        if process is not None and process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._stderr.close()


class LocalWorkers:
    """The run's workers, one per GGUF file; a dead one is replaced on the next call."""

    def __init__(self) -> None:
        self._workers: dict[Path, LocalWorker] = {}
        self._starting: dict[Path, asyncio.Lock] = {}
        self._retired: list[LocalWorker] = []

    async def get(self, path: Path) -> LocalWorker:
        key = path.resolve()
        async with self._starting.setdefault(
            key, asyncio.Lock()
        ):  # concurrent calls share one start
            worker = self._workers.get(key)
            if worker is not None and worker.alive:
                return worker
            if worker is not None:
                self._retired.append(worker)
            worker = LocalWorker(key)
            await worker.start()
            self._workers[key] = worker
            return worker

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers.values() if w.pid is not None and w.alive]

    async def close(self) -> None:
        workers = [*self._workers.values(), *self._retired]
        self._workers.clear()
        self._retired.clear()
        await asyncio.gather(*(worker.close() for worker in workers))


__all__ = ["LocalWorker", "LocalWorkers"]
