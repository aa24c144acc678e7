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
from agentops.runtime.prompts import build_messages, prompt_text
from agentops.runtime.provider import Route
from agentops.runtime.structured import OutputContract, format_name
from agentops.workflow.schemas import strict_mode_problem
from agentops.workflow.spec import Workflow

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
        self._contracts: dict[str, OutputContract] = {}
        self._formats: dict[str, ResponseFormat] = {}
        for agent in workflow.agents:
            if agent.output is not None and agent.name not in reused:
                schema = agent.output.schema_dict
                self._contracts[agent.name] = OutputContract(schema, agent.output.retries)
                strict = isinstance(schema, dict) and strict_mode_problem(schema) is None
                self._formats[agent.name] = ResponseFormat(
                    format_name(agent.name), schema if isinstance(schema, dict) else {}, strict
                )

    def agent_run(
        self,
        name: str,
        result: AgentResult,
        upstream: Mapping[str, AgentResult],
        *,
        item: ItemScope | None = None,
        fed: Collection[str] = (),
        previous: Previous | None = None,
        revision: tuple[str, str] | None = None,
    ) -> AgentRun:
        """The run of agent ``name``, fed by the results of its ``upstream`` agents that succeeded
        (for a fan-out instance: its ``item``, taken from the output of the ``fed`` agents; for a
        loop's member, ``previous``: the members' answers one iteration back)."""
        agent = self._agents[name]
        route = self.routes[name]
        messages = self.messages(
            name, upstream, item=item, fed=fed, previous=previous, revision=revision
        )
        result.prompt = prompt_text(messages)
        toolbox = (
            self.tools.for_agent(name, self.context.emit, result.tool_calls)
            if self.tools is not None
            else None
        )
        request = ChatRequest(
            model=route.model,
            messages=messages,
            max_tokens=self.workflow.effective_max_tokens(agent),
            temperature=self.workflow.effective_temperature(agent),
            timeout=agent.timeout,
            agent=agent.name,
            tools=toolbox.definitions if toolbox is not None else (),
            response_format=self._formats.get(name),
            stream=self.stream,
        )
        return AgentRun(
            self.context,
            route,
            request,
            result,
            retries=self.workflow.effective_retries(agent),
            max_turns=self.workflow.effective_max_turns(agent),
            tools=toolbox,
            output=self._contracts.get(name),
        )

    def messages(
        self,
        name: str,
        upstream: Mapping[str, AgentResult],
        *,
        item: ItemScope | None = None,
        fed: Collection[str] = (),
        previous: Previous | None = None,
        revision: tuple[str, str] | None = None,
    ) -> tuple[Message, ...]:
        """What agent ``name`` is sent, given its ``upstream`` results (a prompt a person
        approves before it runs is this one)."""
        outputs = {dep: upstream[dep].output or "" for dep in upstream}
        values = {dep: upstream[dep].value for dep in upstream}
        return build_messages(
            self._agents[name],
            outputs,
            self.inputs,
            values,
            item=item,
            fed=fed,
            previous=previous,
            revision=revision,
        )


__all__ = ["AgentSetup"]
