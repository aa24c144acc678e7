"""Shared helpers for the workflow-spec tests: load text, collect diagnostics as lines."""

from __future__ import annotations

import textwrap

import pytest

from agentops.errors import WorkflowError
from agentops.workflow.loader import LoadedWorkflow, load_workflow_text
from tests.support import ROOT

EXAMPLES = ROOT / "examples"

# The two example workflows of the original product sketch, verbatim.
SKETCH_SAMPLE = """\
name: research_summary
description: Simple two-agent workflow example
policies:
  retries: 2
  cost_cap: 1.00

agents:
  - name: researcher
    model: gpt-4o
    task: "Find top 3 YC Requests for Startups related to AI infrastructure."
  - name: summarizer
    model: gpt-4o-mini
    depends_on: researcher
    task: "Summarize the researcher's findings in 100 words."
"""

SKETCH_PARALLEL = """\
name: parallel_data_pipeline
description: "6-agent pipeline with parallel gatherers"
policies:
  retries: 2
  cost_cap: 2.00

agents:
  - name: news_gatherer
    model: gpt-4o
    task: "Find 3 recent tech news headlines and brief summaries."
\x20\x20
  - name: weather_gatherer
    model: gpt-4o
    task: "Get current weather information for major cities."
\x20\x20
  - name: market_gatherer
    model: gpt-4o
    task: "Provide current stock market overview and trending stocks."

  - name: data_analyzer
    model: gpt-4o
    depends_on: [news_gatherer, weather_gatherer, market_gatherer]
    task: "Analyze the gathered data and identify key insights."
\x20\x20
  - name: trend_spotter
    model: gpt-4o
    depends_on: [news_gatherer, weather_gatherer, market_gatherer]
    task: "Identify emerging trends and correlations."

  - name: report_beautifier
    model: gpt-4o
    depends_on: [data_analyzer, trend_spotter]
    task: "Create a beautiful, formatted report combining all analysis."
"""

SKETCH_SCHEMA = """\
name: workflow_name
description: "Optional workflow description"
policies:
  retries: 2
  cost_cap: 1.00

agents:
  - name: agent_name
    model: gpt-4o
    task: "Agent task description"
    depends_on: "single_dependency"  # or ["dep1", "dep2"] for multiple
"""


def load(text: str) -> LoadedWorkflow:
    return load_workflow_text(textwrap.dedent(text), "flow.yaml")


def problems(text: str, *, dedent: bool = True) -> list[str]:
    """Every diagnostic for ``text`` as ``flow.yaml:LINE:COL: message``; fails if it loads."""
    source = textwrap.dedent(text) if dedent else text
    with pytest.raises(WorkflowError) as caught:
        load_workflow_text(source, "flow.yaml")
    lines = [str(d) for d in caught.value.diagnostics]
    assert lines, "a WorkflowError must carry at least one diagnostic"
    assert str(caught.value) == "\n".join(lines)
    return lines


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]
