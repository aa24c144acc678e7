"""What each agent's run starts from: its prompt, built from what its dependencies answered; its
tools; its request; and its output contract, with every schema compiled once per workflow run.

The engine decides *when* an agent runs; this builds *what* it runs (an ``AgentRun``), so the
scheduler holds no knowledge of prompts, tools or schemas.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from agentops.runtime.agent_run import AgentRun, RunContext, RunTools
from agentops.runtime.events import AgentResult
from agentops.runtime.messages import ChatRequest, Message, ResponseFormat
from agentops.runtime.prompts import Prompt, prompt_text
from agentops.runtime.provider import Route
from agentops.runtime.structured import OutputContract, format_name
from agentops.workflow.schemas import strict_mode_problem
from agentops.workflow.spec import Agent, Workflow

if TYPE_CHECKING:
    from agentops.workflow.expressions import ItemScope
    from agentops.workflow.templates import Previous


class AgentSetup:
    """Builds the ``AgentRun`` of each agent of one workflow run (``reused`` ones are never run)."""

    def __init__(
        self,
        workflow: Workflow,
        routes: Mapping[str, Route],
        context: RunContext,
        *,
        inputs: Mapping[str, Any],
        tools: RunTools | None,
        stream: bool,
        reused: Collection[str] = (),
    ) -> None:
        self.workflow = workflow
        self.routes = routes
        self.context = context
        self.inputs = inputs
        self.tools = tools
        self.stream = stream  # False: nobody watches tokens, so calls need not stream
        self._agents = {agent.name: agent for agent in workflow.agents}
        # Per agent with an output schema: its contract, and how its request asks for it.
        self.contracts: dict[str, OutputContract] = {}
        self.formats: dict[str, ResponseFormat] = {}
        for agent in workflow.agents:
            if agent.output is not None and agent.name not in reused:
                schema = agent.output.schema_dict
                self.contracts[agent.name] = OutputContract(schema, agent.output.retries)
                strict = isinstance(schema, dict) and strict_mode_problem(schema) is None
                self.formats[agent.name] = ResponseFormat(
                    format_name(agent.name), schema if isinstance(schema, dict) else {}, strict
                )

    def plan(
        self,
        name: str,
        upstream: Mapping[str, AgentResult],
        *,
        fed: Collection[str] = (),
        previous: Previous | None = None,
        revision: tuple[str, str] | None = None,
    ) -> AgentPlan:
        """The runs of agent ``name`` fed by the results of its ``upstream`` agents that
        succeeded (for a fan-out: every item's, each taken from the output of the ``fed``
        agents; for a loop's member, ``previous``: the members' answers one iteration back)."""
        agent = self._agents[name]
        prompt = Prompt(
            agent,
            {dep: result.output or "" for dep, result in upstream.items()},
            self.inputs,
            {dep: result.value for dep, result in upstream.items()},
            fed=fed,
            previous=previous,
            revision=revision,
        )
        return AgentPlan(self, agent, prompt)

    def messages(self, name: str, upstream: Mapping[str, AgentResult]) -> tuple[Message, ...]:
        """What agent ``name`` is sent, given its ``upstream`` results (a prompt a person
        approves before it runs is this one)."""
        return self.plan(name, upstream).prompt.messages()


class AgentPlan:
    """What every run of one agent fed by the same answers shares, worked out once: its prompt
    (rendered per run, with the run's item), route, request settings and output contract. A
    fan-out's instances are its runs, one per item; any other agent has one."""

    __slots__ = (
        "agent",
        "context",
        "max_turns",
        "output",
        "prompt",
        "request",
        "retries",
        "route",
        "setup",
    )

    def __init__(self, setup: AgentSetup, agent: Agent, prompt: Prompt) -> None:
        workflow, name = setup.workflow, agent.name
        self.setup = setup
        self.agent = agent
        self.context = setup.context
        self.prompt = prompt
        self.route = setup.routes[name]
        self.output = setup.contracts.get(name)
        self.retries = workflow.effective_retries(agent)
        self.max_turns = workflow.effective_max_turns(agent)
        # Each run's request is this one with its own messages (and tools, bound to its result).
        self.request = ChatRequest(
            model=self.route.model,
            messages=(),
            max_tokens=workflow.effective_max_tokens(agent),
            temperature=workflow.effective_temperature(agent),
            timeout=agent.timeout,
            agent=name,
            response_format=setup.formats.get(name),
            stream=setup.stream,
        )

    def agent_run(self, result: AgentResult, item: ItemScope | None = None) -> AgentRun:
        """One run, to settle ``result`` (a fan-out instance's: with its ``item``)."""
        setup, agent, shared = self.setup, self.agent, self.request
        messages = self.prompt.messages(item)
        result.prompt = prompt_text(messages)
        toolbox = (
            setup.tools.for_agent(agent.name, self.context.emit, result.tool_calls)
            if setup.tools is not None
            else None
        )
        request = ChatRequest(
            shared.model,
            messages,
            shared.max_tokens,
            shared.temperature,
            shared.timeout,
            shared.agent,
            toolbox.definitions if toolbox is not None else (),
            shared.response_format,
            shared.stream,
        )
        # In order, not by keyword: a class called with keywords builds a dict per run.
        return AgentRun(
            self.context,
            self.route,
            request,
            result,
            self.retries,
            self.max_turns,
            toolbox,
            self.output,
        )


__all__ = ["AgentPlan", "AgentSetup"]
