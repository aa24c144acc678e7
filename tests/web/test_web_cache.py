"""The web view's agent page says which attempts were answered from the response cache."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import agentops
from agentops import FakeProvider
from agentops.workflow.loader import load_workflow_text
from tests.support.web import fetch, ui_server


def test_an_agent_page_marks_a_cached_attempt(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    loaded = load_workflow_text(
        "name: cached\npolicies: {cache: read_write}\n"
        "agents:\n  - {name: a, model: fake, task: say it}\n",
        filename="cached.yaml",
    )
    fake = FakeProvider({"*": "the answer"})
    for _ in range(2):
        assert asyncio.run(agentops.arun(loaded, db=db, provider=fake)).ok
    with ui_server(db) as url:
        first = fetch(f"{url}/runs/1/agents/a")[2]
        second = fetch(f"{url}/runs/2/agents/a")[2]
    cells = r'<td class="num">1</td><td>succeeded( \(cached\))?</td>'
    assert re.findall(cells, first) == [""]
    assert re.findall(cells, second) == [" (cached)"]
