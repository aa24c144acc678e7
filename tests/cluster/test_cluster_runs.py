"""Runs on a real Ray cluster (a head and a worker node on 127.0.0.1): each agent's run a Ray
task, the engine, the history and the cost ledger on the driver; against the test server."""

from __future__ import annotations

import importlib.util
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import agentops
from agentops.runtime.events import AgentFinished, AgentStatus, RunStatus, SkipCause
from agentops.testing.server import Fault, OpenAITestServer, call_tool_until
from tests.support.fan_out import ROUTED_FLOW, answer_the_flow
from tests.support.ray_cluster import RAY_ENV, LocalCluster
from tests.support.reliability import (
    KEY,
    KEY_ENV,
    agent_of,
    cli_env,
    run_agentops,
    write_workflow,
)
from tests.support.tool import stdio_server, write_kb_server

pytestmark = pytest.mark.ray

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}  # USD per million tokens

HEAVY_TOOLS = '''
import os, time

def burn(seconds: float) -> str:
    """Keep a CPU busy for a while; say which process did."""
    end = time.process_time() + seconds
    spins = 0
    while time.process_time() < end:
        spins += 1
    return f"burned in process {os.getpid()}"
'''


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer(latency=0.05) as running:
        yield running


def heavy_flow(tmp_path: Path, server: OpenAITestServer, agents: int) -> Path:
    (tmp_path / "heavy.py").write_text(HEAVY_TOOLS, encoding="utf-8")
    path = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": f"a{n}", "tools": ["burn"]} for n in range(agents)],
        prices=PRICES,
        policies={"cost_cap": 1.0},
    )
    document = path.read_text(encoding="utf-8")
    path.write_text(document + "tools:\n  burn: {python: 'heavy:burn'}\n", encoding="utf-8")
    return path


def test_a_cpu_heavy_python_tool_spreads_the_agents_over_both_nodes(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster, key: None
) -> None:
    server.reply = call_tool_until("burn", {"seconds": 0.4})
    finished: list[Any] = []

    result = agentops.run(
        heavy_flow(tmp_path, server, agents=4),
        executor="ray",
        ray_address=ray_cluster.address,
        subscribers=[lambda e: finished.append(e) if isinstance(e, AgentFinished) else None],
    )

    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    agents = result.agents.values()
    # The python: tool imported on the workers (the folder travels), each call burned there.
    assert all(
        len(a.tool_calls) == 1 and "burned in process" in (a.tool_calls[0].result or "")
        for a in agents
    )
    assert {a.node for a in agents} == set(ray_cluster.node_ids)
    assert len(server.requests) == 8  # a tool call and an answer per agent, nothing twice
    assert sorted(e.result.name for e in finished) == ["a0", "a1", "a2", "a3"]
    assert result.cost == pytest.approx(sum(a.cost or 0 for a in agents)) and result.cost > 0


def test_the_command_line_run_is_recorded_by_the_driver_with_the_node_of_each_agent(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster
) -> None:
    server.reply = call_tool_until("burn", {"seconds": 0.05})
    db = tmp_path / "history.db"
    completed = run_agentops(
        "run",
        heavy_flow(tmp_path, server, agents=2),
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster.address,
        "--db",
        db,
        "--json",
        env=cli_env(**RAY_ENV),
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert {agent["node"] for agent in result["agents"].values()} <= set(ray_cluster.node_ids)
    with sqlite3.connect(db) as history:
        runs = history.execute("SELECT agent, status, cost FROM runs ORDER BY agent").fetchall()
        calls = history.execute(
            "SELECT COUNT(*) FROM tool_calls WHERE status = 'succeeded'"
        ).fetchone()
    assert [(name, status) for name, status, _ in runs] == [
        ("a0", "succeeded"),
        ("a1", "succeeded"),
    ]
    assert calls == (2,)
    assert sum(cost for *_, cost in runs) == pytest.approx(result["cost"])


def fan_out_flow(
    tmp_path: Path, server: OpenAITestServer, items: int, padding: int = 0, **policies: Any
) -> Path:
    """``ROUTED_FLOW`` (a structured planner of ``items`` sections, a writer per section, triage
    routing to plan_feature and away from fix_bug); writer's prompt carries its item, number
    and count, and the server answers item i with "text i" (and ``padding`` more words), so an
    answer traces to its prompt."""
    answer_the_flow(server, items=items)
    for index in range(items):
        answer = f"text {index}" + " word" * padding
        server.answer_when(f"Write 'section {index}' ({index + 1} of {items})", answer)
    agents = [dict(agent) for agent in ROUTED_FLOW]
    writer = next(agent for agent in agents if agent["name"] == "writer")
    writer["task"] = "Write '{{ item.title }}' ({{ item_number }} of {{ item_count }})."
    return write_workflow(
        tmp_path / "flow.yaml", server.base_url, agents, prices=PRICES, policies=policies
    )


def test_a_fan_out_runs_each_item_as_a_task_on_both_nodes_in_item_order_routed_on_the_driver(
    tmp_path: Path, ray_cluster: LocalCluster, key: None
) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer(latency=0.2) as server:
        flow = fan_out_flow(tmp_path, server, items=6, cost_cap=0.01)
        result = agentops.run(flow, executor="ray", ray_address=ray_cluster.address, db=db)
        prompts = [str(request.body["messages"]) for request in server.requests]

    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    writer = result.agents["writer"]
    instances = writer.instances or []
    # Each item rendered into its prompt (item, number, count) and answered as its own call.
    assert writer.value == [f"text {i}" for i in range(6)]
    assert [(i.name, i.item_index, i.item) for i in instances] == [
        (f"writer[{i}]", i, {"title": f"section {i}"}) for i in range(6)
    ]
    assert {i.node for i in instances} == set(ray_cluster.node_ids)  # a task each, spread
    # The decision is the driver's: fix_bug never became a task; plan_feature ran on a node.
    fix_bug, plan_feature = result.agents["fix_bug"], result.agents["plan_feature"]
    assert fix_bug.skip_cause is SkipCause.ROUTED and fix_bug.node is None
    assert fix_bug.decision is not None and not fix_bug.decision.held
    assert (
        plan_feature.status is AgentStatus.SUCCEEDED and plan_feature.node in ray_cluster.node_ids
    )
    assert len(prompts) == 9 and not any("Fix it" in prompt for prompt in prompts)
    assert result.cost is not None and 0 < result.cost <= 0.01
    with sqlite3.connect(db) as history:
        recorded = history.execute(
            "SELECT item_index, node FROM runs WHERE agent = 'writer' ORDER BY item_index"
        ).fetchall()
        spent = history.execute("SELECT sum(cost) FROM runs").fetchone()[0]
    assert recorded == [(None, None), *((i.item_index, i.node) for i in instances)]
    assert spent == pytest.approx(result.cost)


def test_the_cap_holds_over_a_fan_out_on_the_cluster_the_items_past_it_refused(
    tmp_path: Path, ray_cluster: LocalCluster, key: None
) -> None:
    # A call's worst case is about $0.00022 (max_tokens 100); the three agents beside the
    # fan-out cost about $0.00015 together and an item about $0.0001: a few items fit, not 12.
    cap = 0.0006
    with OpenAITestServer(latency=0.2) as server:
        flow = fan_out_flow(tmp_path, server, 12, padding=40, cost_cap=cap, max_tokens=100)
        result = agentops.run(flow, executor="ray", ray_address=ray_cluster.address)
        calls = len(server.requests)

    writer = result.agents["writer"]
    instances = writer.instances or []
    ran = [i for i in instances if i.attempts]
    assert result.status is RunStatus.FAILED
    assert writer.status is AgentStatus.FAILED and "cost cap" in (writer.error or "")
    # As in one process: the items that fit ran, the rest were refused before any call.
    assert 1 <= len(ran) < 12 and all(i.status is AgentStatus.SUCCEEDED for i in ran)
    assert all(i.skip_cause is SkipCause.COST_CAP for i in instances if not i.attempts)
    assert result.cost is not None and result.cost <= cap
    called = [a for a in result.agents.values() if a.attempts] + ran
    assert calls == sum(len(a.attempts) for a in called)  # nothing called twice
    assert all(i.node in ray_cluster.node_ids for i in ran)


def test_a_stopped_run_records_the_cancelled_attempt_made_on_the_worker(
    tmp_path: Path, ray_cluster: LocalCluster, key: None
) -> None:
    with OpenAITestServer(latency=30.0) as slow:
        flow = write_workflow(
            tmp_path / "flow.yaml",
            slow.base_url,
            [{"name": "a"}],
            prices=PRICES,
            # Long enough for a worker process to start and make the call on a busy machine.
            policies={"timeout": 8.0, "cost_cap": 1.0},
        )
        result = agentops.run(flow, executor="ray", ray_address=ray_cluster.address)
    agent = result.agents["a"]
    assert result.status is RunStatus.FAILED
    assert agent.status is AgentStatus.CANCELLED and "timed out" in (agent.error or "")
    assert [a.status for a in agent.attempts] == ["cancelled"]
    assert agent.node in ray_cluster.node_ids  # the attempt came back from the worker
    assert result.finished_at - result.started_at < 25  # the timeout, not the 30 s answer


def test_an_agent_no_node_can_take_is_exit_2_naming_it(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster
) -> None:
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": "a"}, {"name": "gpu", "resources": {"num_gpus": 1}}],
    )
    completed = run_agentops(
        "run",
        flow,
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster.address,
        "--db",
        tmp_path / "history.db",
        env=cli_env(**RAY_ENV),
    )
    assert completed.returncode == 2, completed.stderr
    assert "agent 'gpu' needs num_cpus 1, num_gpus 1 on one node" in completed.stderr
    assert server.requests == []


def test_an_mcp_server_starts_on_the_worker_and_its_calls_and_stderr_reach_the_history(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster, key: None
) -> None:
    write_kb_server(tmp_path)  # travels with the folder; the worker starts it there
    server.reply = call_tool_until("lookup", {"key": "alpha"})
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": "a", "tools": ["kb.lookup"]}],
    )
    document = yaml.safe_load(flow.read_text(encoding="utf-8"))
    document["tools"] = {"kb": stdio_server(mcp={"env": {"KB_TOKEN": "${KB_TOKEN}"}})}
    flow.write_text(yaml.safe_dump(document), encoding="utf-8")
    db = tmp_path / "history.db"
    token = "kb-secret-token-123"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KB_TOKEN", token)  # travels as the job's environment, never as arguments
        result = agentops.run(flow, executor="ray", ray_address=ray_cluster.address, db=db)

    agent = result.agents["a"]
    assert result.status is RunStatus.SUCCEEDED, agent.error
    assert [(c.tool, c.result) for c in agent.tool_calls] == [("kb.lookup", "1")]
    with sqlite3.connect(db) as history:
        servers = history.execute("SELECT name, stderr FROM tool_servers").fetchall()
    # Two ran: the driver's, started to list its tools and check it before any call, and the
    # worker's, which the call went to (its stderr masked there).
    assert [name for name, _ in servers] == ["kb", "kb"]
    assert sum("lookup alpha with token ***" in stderr for _, stderr in servers) == 1
    assert not any(token in stderr for _, stderr in servers)


def test_a_failed_run_is_resumed_on_the_cluster_without_calling_what_succeeded(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster, key: None
) -> None:
    flow = write_workflow(
        tmp_path / "flow.yaml",
        server.base_url,
        [{"name": "first"}, {"name": "second", "depends_on": "first", "retries": 0}],
        prices=PRICES,
        policies={"cost_cap": 1.0},
    )
    db = tmp_path / "history.db"
    server.inject(Fault(kind="status", status=400), match=lambda body: "second" in str(body))
    failed = agentops.run(flow, executor="ray", ray_address=ray_cluster.address, db=db)
    assert failed.agents["second"].status is AgentStatus.FAILED

    resumed = agentops.resume(
        failed.workflow_run_id, db=db, executor="ray", ray_address=ray_cluster.address
    )

    assert resumed.status is RunStatus.SUCCEEDED
    assert resumed.agents["first"].reused and resumed.agents["second"].node is not None
    assert [agent_of(r.body) for r in server.requests] == ["first", "second", "second"]
    assert resumed.spent_before == pytest.approx(failed.cost)


def test_a_program_connected_to_ray_itself_is_used_as_it_is_and_left_connected(
    tmp_path: Path, server: OpenAITestServer, ray_cluster: LocalCluster, key: None
) -> None:
    import ray

    flow = write_workflow(tmp_path / "flow.yaml", server.base_url, [{"name": "a"}, {"name": "b"}])
    ray.init(address=ray_cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        result = agentops.run(flow, executor="ray")  # its provider key goes with each task
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    assert result.status is RunStatus.SUCCEEDED
    assert {a.node for a in result.agents.values()} <= set(ray_cluster.node_ids)


def local_workers_under_ray() -> dict[int, int]:
    """The local provider's worker processes whose parent is a Ray worker process: child pid
    by parent pid (read from /proc)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "agentops.providers.local_worker" not in command:
                continue
            status = (entry / "status").read_text()
            parent = int(status.split("PPid:", 1)[1].split()[0])
            parent_command = Path(f"/proc/{parent}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
        if parent_command.startswith("ray::"):
            found[int(entry.name)] = parent
    return found


@pytest.mark.local_model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"
)
def test_a_local_model_is_loaded_once_in_each_worker_process_that_runs_it(
    tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    import ray

    flow = tmp_path / "local.yaml"
    agents = [{"name": f"a{n}", "model": "local:smollm2", "task": "Say hi."} for n in range(4)]
    document = {"name": "local", "policies": {"max_tokens": 4, "retries": 0}, "agents": agents}
    flow.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    # Connected here, so the job's worker processes (and what they keep) outlive the run.
    ray.init(address=ray_cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        result = agentops.run(flow, executor="ray")
        workers = local_workers_under_ray()
    finally:
        ray.shutdown()
    assert result.status is RunStatus.SUCCEEDED, {n: a.error for n, a in result.agents.items()}
    assert all(
        a.node in ray_cluster.node_ids and a.usage.output_tokens for a in result.agents.values()
    )
    # Four agent runs, one model worker per Ray worker process that ran some: loaded once
    # there and kept for the next run (not closed after each, not one per run).
    assert 1 <= len(workers) < 4
    assert len(set(workers.values())) == len(workers)


def test_a_run_on_ray_records_request_keys_and_replays_locally(
    tmp_path: Path, ray_cluster: LocalCluster, key: None
) -> None:
    db = tmp_path / "history.db"
    with OpenAITestServer() as server:
        flow = write_workflow(
            tmp_path / "flow.yaml",
            server.base_url,
            [{"name": "a"}, {"name": "b", "depends_on": "a"}],
        )
        recorded = agentops.run(flow, db=db, executor="ray", ray_address=ray_cluster.address)
        assert recorded.ok and len(server.requests) == 2
        with pytest.raises(agentops.UsageError, match="use --executor local with them"):
            agentops.run(flow, db=db, executor="ray", cache="read")
    # The server is gone: the local replay answers from what the workers recorded.
    replayed = agentops.run(flow, db=db, replay=recorded.workflow_run_id)
    assert replayed.ok
    assert {n: a.output for n, a in replayed.agents.items()} == {
        n: a.output for n, a in recorded.agents.items()
    }
