"""Synthetic events of a run with a fan-out and a routing decision, for the views and
traces tests: real event dataclasses and a real loaded workflow, every field known.

``flow``: planner, then writer (a fan-out over planner's sections), fix_bug (routed on
planner's answer) and editor (after writer). Item calls take 1 s from 1001.0 and cost
10+5 tokens and $0.001 each; the fan-out runs from 1000.5 to 1004.0.
"""

from __future__ import annotations

from agentops.runtime.events import (
    AgentFinished,
    AgentResult,
    AgentStarted,
    AgentStatus,
    Attempt,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    Decision,
    Event,
    RunStatus,
    SkipCause,
    TokensStreamed,
    Usage,
    WorkflowResult,
    instance_key,
)
from agentops.testing.server import OpenAITestServer
from agentops.workflow.loader import load_workflow_text
from agentops.workflow.spec import Workflow

FLOW_YAML = """\
name: flow
policies: {cost_cap: 1.0}
agents:
  - name: planner
    model: gpt-4o
    task: plan
    output:
      schema:
        type: object
        properties:
          kind: {enum: [bug, feature]}
          sections: {type: array, items: {type: object, properties: {title: {type: string}}}}
        required: [kind, sections]
  - {name: writer, model: gpt-4o, task: write, depends_on: planner, for_each: planner.output.sections}
  - {name: fix_bug, model: gpt-4o, task: fix, depends_on: planner, when: "planner.output.kind == 'bug'"}
  - {name: editor, model: gpt-4o, task: edit, depends_on: writer}
"""
REASON = "when planner.output.kind == 'bug' was false (planner.output.kind: 'feature')"


def flow() -> Workflow:
    return load_workflow_text(FLOW_YAML, filename="flow.yaml").workflow


def item(index: int, status: AgentStatus = AgentStatus.SUCCEEDED, **fields: object) -> AgentResult:
    """Instance ``index`` of ``writer``, settled: 10+5 tokens and $0.001 a call."""
    failed = status is AgentStatus.FAILED
    attempt = Attempt(
        1,
        "failed" if failed else "succeeded",
        1001.0,
        1.0,
        usage=Usage(10, 5),
        cost=0.001,
        error="ServerError: 500 boom" if failed else None,
    )
    values: dict[str, object] = {
        "output": None if failed else f"section {index}",
        "error": attempt.error,
        "usage": Usage(10, 5),
        "cost": 0.001,
        "attempts": [attempt],
        "started_at": 1001.0,
        "finished_at": 1002.0,
        "agent": "writer",
        "item_index": index,
        "item": {"title": f"t{index}"},
        **fields,
    }
    return AgentResult(instance_key("writer", index), status, "gpt-4o", "openai", **values)  # type: ignore[arg-type]


def item_events(result: AgentResult, *, text: str = "") -> list[Event]:
    """The events of one instance, start to finish."""
    name = result.name
    attempt = result.attempts[0]
    events: list[Event] = [
        AgentStarted(name, "gpt-4o", "openai", "p", result.started_at or 1001.0),
        AttemptStarted(name, 1),
        TokensStreamed(name, text or f"text of {name}"),
    ]
    if attempt.status == "succeeded":
        events.append(AttemptSucceeded(name, attempt))
    else:
        events.append(AttemptFailed(name, attempt, will_retry=False, retry_in=None))
    return [*events, AgentFinished(result)]


def fan_out_result(instances: list[AgentResult], count: int) -> AgentResult:
    failed = [i for i in instances if i.status is not AgentStatus.SUCCEEDED]
    return AgentResult(
        "writer",
        AgentStatus.FAILED if failed or len(instances) < count else AgentStatus.SUCCEEDED,
        "gpt-4o",
        "openai",
        output="[]",
        error=f"{len(failed)} of {count} items failed" if failed else None,
        usage=sum((i.usage for i in instances), Usage()),
        cost=sum(i.cost or 0.0 for i in instances),
        started_at=1000.5,
        finished_at=1004.0,
        instances=instances,
        item_count=count,
    )


def routed_away() -> AgentResult:
    return AgentResult(
        "fix_bug",
        AgentStatus.SKIPPED,
        "gpt-4o",
        "openai",
        error=REASON,
        skip_cause=SkipCause.ROUTED,
        decision=Decision(
            "planner.output.kind == 'bug'", False, {"planner.output.kind": "feature"}
        ),
        finished_at=1000.6,
    )


def run_result(agents: list[AgentResult], status: RunStatus) -> WorkflowResult:
    return WorkflowResult("flow", status, {a.name: a for a in agents}, 1000.0, 1005.0, cost_cap=1.0)


# --- a real run's workflow, for the test server ----------------------------------------------

SECTIONS = {
    "type": "object",
    "properties": {
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}},
                "required": ["title"],
            },
        }
    },
    "required": ["sections"],
}
LABEL = {
    "type": "object",
    "properties": {"label": {"enum": ["bug", "feature", "question"]}},
    "required": ["label"],
}
# triage, two branches routed by its label (one with a step after it), and a join of them
ROUTING = [
    {"name": "triage", "task": "Classify the ticket.", "output": {"schema": LABEL}},
    {
        "name": "fix_bug",
        "depends_on": "triage",
        "when": "triage.output.label == 'bug'",
        "task": "Fix it.",
    },
    {"name": "test_fix", "depends_on": "fix_bug", "task": "Test the fix."},
    {
        "name": "plan_feature",
        "depends_on": "triage",
        "when": "triage.output.label == 'feature'",
        "task": "Plan it.",
    },
    {"name": "reply", "depends_on": {"any": ["test_fix", "plan_feature"]}, "task": "Reply."},
]
ROUTED_FLOW = [
    {"name": "planner", "task": "Outline a report.", "output": {"schema": SECTIONS}},
    {"name": "writer", "for_each": "planner.output.sections", "task": "Write '{{ item.title }}'."},
    {"name": "triage", "task": "Classify the ticket.", "output": {"schema": LABEL}},
    {"name": "fix_bug", "depends_on": "triage", "when": "triage.output.label == 'bug'"},
    {"name": "plan_feature", "depends_on": "triage", "when": "triage.output.label == 'feature'"},
]


def answer_the_flow(
    server: OpenAITestServer, items: int = 4, label: str = "feature", *, last: str = ""
) -> None:
    """``server`` answers ``ROUTED_FLOW``'s planner with ``items`` sections ("section 0", ...;
    ``last`` appended to the last one's title), its triage with ``label``."""
    titles = [f"section {i}" for i in range(items)]
    if titles:
        titles[-1] += last
    server.answer_when("Outline a report", {"sections": [{"title": t} for t in titles]})
    server.answer_when("Classify the ticket", {"label": label})
