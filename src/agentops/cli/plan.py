"""``agentops plan``: what a run would do and could cost, without calling any model.

Per agent the worst case is what the engine would reserve: an upper bound on
input tokens (the prompt's UTF-8 bytes plus per-message overhead, with each
upstream output counted at its ``max_tokens``) times the input price, plus
``max_tokens`` times the output price. An agent with tools makes up to
``max_turns`` model calls: its worst case is shown as max_turns × that first
turn's bound, which later turns exceed as tool results grow the prompt (each
turn reserves its own bound before it is sent, so the cap still holds).

A fan-out (``for_each``) runs once per item, at most ``max_items`` times: its worst case
is max_items × one instance's, and an instance's prompt holds its item (each ``{{ item }}``
counted at the source agent's ``max_tokens``) instead of the source's whole answer. An
agent downstream of a fan-out is fed the whole list: max_items answers, each at most
``max_tokens`` plus per-message overhead. An agent with ``when`` may run, so its worst case
counts in full, noted with its condition.

A loop's member (``loops:``) runs up to ``max_iterations`` times: its worst case is
max_iterations × one iteration's, and its prompt's bound counts each
``{{ NAME.previous.output }}`` at NAME's ``max_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agentops.errors import ConfigurationError
from agentops.providers.registry import ProviderRegistry
from agentops.runtime.budget import TOKENS_PER_MESSAGE, input_token_bound
from agentops.runtime.messages import ChatRequest
from agentops.runtime.pricing import PriceBook
from agentops.runtime.prompts import build_messages
from agentops.runtime.provider import Route
from agentops.runtime.usage import Usage
from agentops.ui.format import plural
from agentops.workflow.graph import WorkflowGraph, describe_condition, for_each_sources
from agentops.workflow.loader import strict_mode_warnings
from agentops.workflow.spec import Agent, Workflow
from agentops.workflow.templates import Previous, referenced_agents, references

_NO_PREVIOUS = Previous({}, {})  # a previous answer is counted apart, at its max_tokens


@dataclass
class PlannedAgent:
    name: str
    step: int  # earliest step it can start in (0: at once)
    depends_on: str
    model: str
    provider: str | None
    max_tokens: int
    input_tokens_bound: int
    worst_case_cost: (
        float | None
    )  # None: unknown price or provider; for a tool loop max_turns × per turn
    note: str | None = None
    max_turns: int = 1  # model calls in its loop (1 without tools)
    per_turn_cost: float | None = None  # the first turn's worst case
    tools: list[str] = field(default_factory=list)
    output_retries: int = (
        0  # re-asks its output schema allows (each one more call in the worst case)
    )
    warning: str | None = None  # e.g. an output schema OpenAI's strict mode cannot take
    # A fan-out: its for_each, and the most items it runs (max_items); worst_case_cost is
    # fan_out_items × per_item_cost, and input_tokens_bound is one instance's.
    for_each: str | None = None
    fan_out_items: int | None = None
    per_item_cost: float | None = None
    when: str | None = None  # runs only when this holds (its worst case counts: it may run)
    # A loop's member: its loop, and the most iterations it runs (max_iterations); worst_case_cost
    # is max_iterations × per_iteration_cost.
    loop: str | None = None
    max_iterations: int | None = None
    per_iteration_cost: float | None = None


@dataclass
class Plan:
    workflow: str
    agents: list[PlannedAgent]
    critical_path: list[str]
    cost_cap: float | None
    max_concurrency: int

    @property
    def worst_case_total(self) -> float | None:
        costs = [a.worst_case_cost for a in self.agents]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "worst_case_total": self.worst_case_total}


def make_plan(
    workflow: Workflow, inputs: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Plan:
    return _Planner(workflow, env).plan(inputs)


class _Planner:
    """Plans one workflow for any inputs: the graph, routes and prices are worked out once."""

    def __init__(self, workflow: Workflow, env: Mapping[str, str] | None) -> None:
        self.workflow = workflow
        self.graph = WorkflowGraph(workflow)
        self.levels = self.graph.levels()
        self.registry = ProviderRegistry(
            workflow, env=env, max_connections=workflow.policies.max_concurrency
        )
        self.prices = PriceBook(workflow.prices)
        self.loops = {member: loop for loop in workflow.loops for member in loop.agents}

    def plan(self, inputs: Mapping[str, Any]) -> Plan:
        workflow, graph, levels, registry, prices = (
            self.workflow,
            self.graph,
            self.levels,
            self.registry,
            self.prices,
        )
        warnings = {
            workflow.agents[index].name: message
            for index, message in strict_mode_warnings(workflow)
        }
        planned = []
        for name in sorted(graph.names, key=lambda n: (levels[n], graph.names.index(n))):
            agent = workflow.agent(name)
            max_tokens = workflow.effective_max_tokens(agent)
            fed = self._fed(agent)
            upstream = {dep: "" for dep in sorted(graph.dependencies[name])}
            request = ChatRequest(
                agent.model,
                build_messages(
                    agent,
                    upstream,
                    inputs,
                    fed=fed,
                    previous=_NO_PREVIOUS if name in self.loops else None,
                ),
                max_tokens,
            )
            bound = (
                input_token_bound(request)
                + sum(self._output_bound(dep) for dep in upstream if dep not in fed)
                + self._item_bound(agent)
                + self._previous_bound(agent)
            )
            route: Route | None = None
            note = None
            try:
                route = registry.route(agent)
            except ConfigurationError as error:
                note = str(error)
            per_turn = prices.cost(route, Usage(bound, max_tokens)) if route else None
            if route and per_turn is None:
                note = f"no known price for {route.model!r}: add it under prices:"
            output_retries = agent.output.retries if agent.output is not None else 0
            turns = workflow.effective_max_turns(agent) + output_retries
            per_run = None if per_turn is None else per_turn * turns
            items = workflow.effective_max_items(agent) if agent.for_each else None
            per_iteration = None if per_run is None else per_run * (items or 1)
            loop = self.loops.get(name)
            rounds = loop.max_iterations if loop is not None else None
            cost = None if per_iteration is None else per_iteration * (rounds or 1)
            planned.append(
                PlannedAgent(
                    name=name,
                    step=levels[name],
                    depends_on=describe_condition(graph.conditions[name]),
                    model=route.model if route else agent.model,
                    provider=route.provider if route else None,
                    max_tokens=max_tokens,
                    input_tokens_bound=bound,
                    worst_case_cost=cost,
                    note=note,
                    max_turns=turns,
                    per_turn_cost=per_turn,
                    tools=list(agent.tools),
                    output_retries=output_retries,
                    warning=warnings.get(name),
                    for_each=agent.for_each,
                    fan_out_items=items,
                    per_item_cost=per_run if items is not None else None,
                    when=agent.when,
                    loop=loop.name if loop is not None else None,
                    max_iterations=rounds,
                    per_iteration_cost=per_iteration if rounds is not None else None,
                )
            )
        path, _ = graph.critical_path({name: 1.0 for name in graph.names})
        return Plan(
            workflow=workflow.name,
            agents=planned,
            critical_path=path,
            cost_cap=workflow.policies.cost_cap,
            max_concurrency=workflow.policies.max_concurrency,
        )

    def _output_bound(self, name: str) -> int:
        """Input tokens the answer of ``name`` can add to a prompt it is fed to: its
        ``max_tokens`` plus a message's overhead, once per item for a fan-out (its list)."""
        agent = self.workflow.agent(name)
        one = self.workflow.effective_max_tokens(agent) + TOKENS_PER_MESSAGE
        return one * self.workflow.effective_max_items(agent) if agent.for_each else one

    def _fed(self, agent: Agent) -> frozenset[str]:
        """The agents a fan-out instance is fed only through its item: its ``for_each`` source,
        unless a template places that agent's answer too (as ``build_messages`` decides)."""
        if not agent.for_each:
            return frozenset()
        placed = referenced_agents(agent.task) | referenced_agents(agent.system or "")
        return frozenset(for_each_sources(agent.for_each)) - placed

    def _previous_bound(self, agent: Agent) -> int:
        """What each ``{{ NAME.previous.output }}`` adds: NAME's answer (a fan-out's list)."""
        return sum(
            self._output_bound(ref.name)
            for text in (agent.task, agent.system or "")
            for ref in references(text)
            if ref.kind == "previous" and ref.name in self.loops
        )

    def _item_bound(self, agent: Agent) -> int:
        """What a fan-out instance's item adds: each ``{{ item... }}`` renders part of one
        answer of the source (for a fan-out source, one instance's), so at most its max_tokens."""
        if not agent.for_each:
            return 0
        source = sum(
            self.workflow.effective_max_tokens(self.workflow.agent(name))
            for name in for_each_sources(agent.for_each)
        )
        placed = [
            ref
            for text in (agent.task, agent.system or "")
            for ref in references(text)
            if ref.kind == "item" and ref.name == "item"
        ]
        return source * len(placed)


@dataclass
class BatchPlan:
    """The worst case of a whole batch: every row's worst case, summed."""

    rows: int
    worst_case_total: float | None  # None: some agent has no known price
    largest_row: int  # the row with the largest worst case
    largest_row_cost: float | None
    cost_cap: float | None  # the batch's cap: --cost-cap, else policies.cost_cap
    rows_within_cap: int | None  # rows, in order, whose worst cases fit under the cap together

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def make_batch_plan(
    workflow: Workflow,
    rows: Iterable[Mapping[str, Any]],
    cost_cap: float | None = None,
    env: Mapping[str, str] | None = None,
) -> BatchPlan:
    """Plan every row (``rows``: each row's resolved inputs) as ``make_plan`` plans one run."""
    planner = _Planner(workflow, env)
    cap = cost_cap if cost_cap is not None else workflow.policies.cost_cap
    total: float | None = 0.0
    count = largest_row = 0
    largest: float | None = 0.0
    within: int | None = 0 if cap is not None else None
    for count, inputs in enumerate(rows, 1):
        worst = planner.plan(inputs).worst_case_total
        if worst is None:
            total = largest = within = None
            continue
        if total is not None and largest is not None:
            if (
                within is not None
                and cap is not None
                and total + worst <= cap
                and within == count - 1
            ):
                within = count
            total += worst
            if worst > largest:
                largest, largest_row = worst, count
    return BatchPlan(count, total, largest_row, largest, cap, within)


def render_batch_plan(plan: BatchPlan) -> list[str]:
    if plan.worst_case_total is None:
        return [
            f"Worst case of the batch ({plan.rows} rows): unknown (some agents have no known price or provider)"
        ]
    lines = [
        f"Worst case of the batch ({plan.rows} rows): ${plan.worst_case_total:.6f} "
        f"(largest row: row {plan.largest_row}, ${plan.largest_row_cost or 0.0:.6f})"
    ]
    if plan.cost_cap is None:
        lines.append("No cost cap for the batch: set --cost-cap or policies.cost_cap to bound it")
    elif plan.worst_case_total <= plan.cost_cap:
        lines.append(f"It fits under the batch's ${plan.cost_cap:g} cap")
    else:
        lines.append(
            f"It exceeds the batch's ${plan.cost_cap:g} cap: by worst case the first {plan.rows_within_cap} rows fit; "
            "rows that cannot start under the cap are skipped (real costs are usually far lower)"
        )
    return lines


def render_plan(plan: Plan) -> list[str]:
    """The plan as plain text lines (no markup: names come from user files)."""
    cap = f"cost cap ${plan.cost_cap:g}" if plan.cost_cap is not None else "no cost cap"
    lines = [
        f"Plan for {plan.workflow}: {len(plan.agents)} agents, max_concurrency {plan.max_concurrency}, {cap}",
        "",
        "Execution order (each agent starts as soon as its dependencies settle):",
    ]
    width = max(len(a.name) for a in plan.agents)
    for agent in plan.agents:
        cost = "unknown" if agent.worst_case_cost is None else f"${agent.worst_case_cost:.6f}"
        after = f"after {agent.depends_on}" if agent.depends_on else "at start"
        where = f"{agent.provider}:{agent.model}" if agent.provider else agent.model
        # A fan-out's bound is one item's, times its items: "per item (…) ×100 items (max_items)".
        per_item = "unknown" if agent.per_item_cost is None else f"${agent.per_item_cost:.6f}"
        items = (
            ""
            if agent.fan_out_items is None
            else f" per item ({per_item}) ×{plural(agent.fan_out_items, 'item')} (max_items)"
        )
        if agent.max_iterations is not None:
            one = (
                "unknown"
                if agent.per_iteration_cost is None
                else f"${agent.per_iteration_cost:.6f}"
            )
            items += f" per iteration ({one}) ×{plural(agent.max_iterations, 'iteration')} (max_iterations)"
        if agent.max_turns > 1:
            per_turn = "unknown" if agent.per_turn_cost is None else f"${agent.per_turn_cost:.6f}"
            calls = [f"tools {', '.join(agent.tools)}"] if agent.tools else []
            if agent.output_retries:
                calls.append(f"output schema with {plural(agent.output_retries, 're-ask')}")
            grows = " and ".join(
                [
                    *(["tool results"] if agent.tools else []),
                    *(["re-asks"] if agent.output_retries else []),
                ]
            )
            counted = (
                "max_turns"
                if not agent.output_retries
                else ("1 + output.retries" if not agent.tools else "max_turns + output.retries")
            )
            bound = (
                f"{'; '.join(calls)}; up to {agent.max_turns} turns ({counted}) × "
                f"≤{agent.input_tokens_bound} in + ≤{agent.max_tokens} out tokens ({per_turn})"
                f"{items} = worst case {cost}, "
                f"counting the first turn's prompt only ({grows} grow later ones; each turn "
                "reserves its own bound)"
            )
        elif agent.fan_out_items is not None or agent.max_iterations is not None:
            bound = (
                f"≤{agent.input_tokens_bound} in + ≤{agent.max_tokens} out tokens{items} "
                f"= worst case {cost}"
            )
        else:
            bound = f"≤{agent.input_tokens_bound} in + ≤{agent.max_tokens} out tokens, worst case {cost}"
        lines.append(f"  step {agent.step + 1}  {agent.name:<{width}}  {where}  {after}; {bound}")
        if agent.for_each:
            lines.append(
                f"          fan-out: one agent run per item of {' '.join(agent.for_each.split())}"
            )
        if agent.loop:
            lines.append(
                f"          loop {agent.loop}: one agent run per iteration, up to {agent.max_iterations} (max_iterations)"
            )
        if agent.when:
            lines.append(
                f"          runs only when {' '.join(agent.when.split())} "
                "(counted in the worst case: it may run)"
            )
        if agent.note:
            lines.append(f"          note: {agent.note}")
        if agent.warning:
            lines.append(f"          warning: {agent.warning}")
    lines.append("")
    lines.append(
        f"Critical path ({len(plan.critical_path)} calls): {' → '.join(plan.critical_path)}"
    )
    total = plan.worst_case_total
    if total is None:
        lines.append("Worst-case total: unknown (some agents have no known price or provider)")
    elif plan.cost_cap is None:
        lines.append(f"Worst-case total: ${total:.6f} (no cap)")
    else:
        verdict = (
            "fits under the cap"
            if total <= plan.cost_cap
            else "exceeds the cap: agents (and fan-out items) that would not fit are skipped with reason 'cost cap'"
        )
        lines.append(f"Worst-case total: ${total:.6f} of ${plan.cost_cap:g} cap ({verdict})")
    return lines
