"""``rerun --from AGENT``: a new run, linked to the recorded one, that reuses the recorded outputs
of every agent not downstream of AGENT and runs the rest with the current YAML; a changed
upstream definition is refused unless forced; fan-out instances and structured values too; a
history of either store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agentops.api import arerun, arun
from agentops.errors import UsageError
from agentops.runtime.events import AgentStatus, WorkflowResult
from agentops.store.resume import chain_spend
from agentops.store.stores import open_database
from agentops.testing.server import OpenAITestServer
from tests.support.fan_out import SECTIONS, answer_the_flow
from tests.support.reliability import KEY, KEY_ENV, run_agentops, write_workflow
from tests.support.store import rows

PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}
AGENTS: list[dict[str, Any]] = [
    {"name": "a", "task": "a: start"},
    {"name": "b", "depends_on": "a", "task": "b: build on {{ a.output }}"},
    {"name": "c", "depends_on": "b", "task": "c: finish {{ b.output }}"},
    {"name": "side", "task": "side: on the side"},
]


@pytest.fixture(autouse=True)
def provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def write(path: Path, server: OpenAITestServer, agents: list[dict[str, Any]]) -> Path:
    return write_workflow(path, server.base_url, agents, name="chain", prices=PRICES)


def rerun(run_id: int, agent: str, db: str | Path, *args: Any, **options: Any) -> WorkflowResult:
    return asyncio.run(arerun(run_id, agent, *args, db=db, **options))


def asked(server: OpenAITestServer) -> list[str]:
    """The agents whose calls reached the server, in order (each task starts with its name)."""
    return [str(r.body["messages"][-1]["content"]).split(":")[0] for r in server.requests]


def test_rerun_from_an_agent_reuses_everything_not_downstream_of_it(
    server: OpenAITestServer, tmp_path: Path, db: str
) -> None:
    flow = write(tmp_path / "flow.yaml", server, AGENTS)
    first = asyncio.run(arun(flow, db=db))
    assert first.ok and first.workflow_run_id == 1 and len(server.requests) == 4
    changed = write(
        tmp_path / "changed.yaml",
        server,
        [*AGENTS[:2], {**AGENTS[2], "task": "c: polish {{ b.output }}"}, AGENTS[3]],
    )
    server.requests.clear()
    again = rerun(1, "b", db, changed)
    assert again.ok
    assert sorted(asked(server)) == ["b", "c"]
    assert "polish" in str(server.requests[-1].body["messages"])
    for name in ("a", "side"):
        reused = again.agents[name]
        assert reused.reused and reused.output == first.agents[name].output
    assert not again.agents["b"].reused and not again.agents["c"].reused
    # The reused agents cost nothing here; the rerun's own spend is b and c.
    assert again.cost == pytest.approx(again.agents["b"].cost + again.agents["c"].cost)
    (link,) = rows(
        db, "SELECT resumed_from, rerun_from, source_path FROM workflow_runs WHERE id = 2"
    )
    reused_from = dict(
        tuple(r)
        for r in rows(db, "SELECT agent, reused_from_run_id FROM runs WHERE workflow_run_id = 2")
    )
    assert tuple(link) == (1, "b", str(changed))
    assert reused_from["a"] is not None and reused_from["b"] is None
    # The rerun is a new run: what the run it reused spent is not its spend.
    with open_database(db) as store:
        assert chain_spend(store, 2) == pytest.approx(again.cost)


def test_a_changed_upstream_agent_is_refused_unless_forced(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    asyncio.run(arun(write(tmp_path / "flow.yaml", server, AGENTS), db=db))
    changed = write(
        tmp_path / "changed.yaml",
        server,
        [{**AGENTS[0], "task": "a: begin", "model": "gpt-4o"}, *AGENTS[1:]],
    )
    server.requests.clear()
    with pytest.raises(UsageError) as refused:
        rerun(1, "c", db, changed)
    assert str(refused.value) == (
        "agent 'a' changed since workflow run 1 (model, task), so its recorded output may not "
        "be what it answers now; rerun from it (--from a), or pass --force to reuse it anyway"
    )
    assert server.requests == []
    # A change below the agent rerun from is what a rerun is for; and a temperature counts.
    assert rerun(1, "a", db, changed).ok
    warmer = write(
        tmp_path / "warmer.yaml", server, [{**AGENTS[0], "temperature": 0.9}, *AGENTS[1:]]
    )
    with pytest.raises(UsageError, match=r"agent 'a' changed .*\(temperature\)"):
        rerun(1, "b", db, warmer)
    server.requests.clear()
    forced = rerun(1, "c", db, changed, force=True)
    assert forced.ok and asked(server) == ["c"]
    assert forced.agents["a"].reused


def test_the_recorded_file_is_used_only_while_it_is_unchanged(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    flow = write(tmp_path / "flow.yaml", server, AGENTS)
    asyncio.run(arun(flow, db=db))
    server.requests.clear()
    assert rerun(1, "c", db).ok and asked(server) == ["c"]
    write(tmp_path / "flow.yaml", server, [*AGENTS[:2], {**AGENTS[2], "task": "c: new"}, AGENTS[3]])
    with pytest.raises(UsageError, match=r"flow.yaml changed since workflow run 1 .* name it"):
        rerun(1, "c", db)
    assert rerun(1, "c", db, flow).ok  # named: run with what it says now
    with pytest.raises(UsageError, match="has no agent 'cc'; did you mean 'c'"):
        rerun(1, "cc", db, flow)


def test_a_fan_out_and_structured_values_are_reused_or_rerun_whole(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    answer_the_flow(server, items=3)
    agents = [
        {"name": "planner", "task": "Outline a report.", "output": {"schema": SECTIONS}},
        {
            "name": "writer",
            "for_each": "planner.output.sections",
            "task": "Write '{{ item.title }}'.",
        },
        {"name": "editor", "depends_on": "writer", "task": "Edit {{ writer.output }}"},
    ]
    flow = write(tmp_path / "flow.yaml", server, agents)
    first = asyncio.run(arun(flow, db=db))
    assert first.ok and len(server.requests) == 5
    server.requests.clear()
    edited = rerun(1, "editor", db)
    assert edited.ok and len(server.requests) == 1  # the planner and every item reused
    assert edited.agents["planner"].value == first.agents["planner"].value
    assert edited.agents["writer"].output == first.agents["writer"].output
    assert edited.agents["editor"].status is AgentStatus.SUCCEEDED
    server.requests.clear()
    rewritten = rerun(1, "writer", db)
    assert rewritten.ok and len(server.requests) == 4  # the three items and the editor
    instances = rewritten.agents["writer"].instances or []
    assert [i.reused for i in instances] == [False, False, False]


def test_rerun_on_the_command_line(server: OpenAITestServer, tmp_path: Path, db: str) -> None:
    flow = write(tmp_path / "flow.yaml", server, AGENTS)
    assert run_agentops("run", flow, "--db", db).returncode == 0
    done = run_agentops("rerun", "1", "--from", "c", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 5
    changed = write(tmp_path / "changed.yaml", server, [{**AGENTS[0], "task": "a: x"}, *AGENTS[1:]])
    refused = run_agentops("rerun", "1", "--from", "c", changed, "--db", db)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: agent 'a' changed since workflow run 1 (task), so its recorded output may not "
        "be what it answers now; rerun from it (--from a), or pass --force to reuse it anyway"
    ]
    forced = run_agentops("rerun", "1", "--from", "c", changed, "--force", "--db", db)
    assert forced.returncode == 0, forced.stderr


def test_a_rerun_with_the_cache_calls_only_what_changed(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    db = tmp_path / "history.db"
    flow = write(tmp_path / "flow.yaml", server, AGENTS)
    asyncio.run(arun(flow, db=db, cache="read_write"))
    server.requests.clear()
    same = rerun(1, "b", db, cache="read")  # b and c ask what they asked: both hits
    assert same.ok and server.requests == []
    assert all(a.cached for a in same.agents["c"].attempts)
    changed = write(
        tmp_path / "changed.yaml",
        server,
        [*AGENTS[:2], {**AGENTS[2], "task": "c: again"}, AGENTS[3]],
    )
    assert rerun(1, "b", db, changed, cache="read").ok
    assert asked(server) == ["c"]
