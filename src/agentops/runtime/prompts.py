"""The prompt an agent is sent: its system prompt and task, rendered from its templates
(``agentops.workflow.templates``) with what its dependencies answered.

Agents whose output a task or system prompt places explicitly get no automatic context
block; the others' outputs are appended to the task in a labelled block.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from agentops.runtime.messages import Message
from agentops.workflow.spec import Agent
from agentops.workflow.templates import Previous, referenced_agents, render

if TYPE_CHECKING:
    from agentops.workflow.expressions import ItemScope

CONTEXT_HEADER = "--- Outputs of upstream agents ---"
CONTEXT_FOOTER = "--- End of upstream outputs ---"
REVISION_HEADER = "--- Your previous answer ---"
REVISION_FOOTER = "--- End of your previous answer ---"


class Prompt:
    """The messages one agent is sent, given its succeeded direct dependencies' outputs (and
    the parsed values of those with an output schema). Built once for every run fed by the
    same answers: a fan-out's items differ only in their ``item``, so only the templates are
    rendered per item; the block of upstream outputs is put together once.

    ``fed``: agents whose output reaches a fan-out instance as its item, so not as a whole too.
    A loop's member gets ``previous``, what the loop's members answered one iteration back.
    An answer a person sent back (``approval: after``) comes as ``revision``: (that answer,
    their feedback), appended to the task."""

    __slots__ = ("agent", "inputs", "outputs", "previous", "suffix", "values")

    def __init__(
        self,
        agent: Agent,
        upstream_outputs: Mapping[str, str],
        inputs: Mapping[str, Any],
        upstream_values: Mapping[str, Any] | None = None,
        *,
        fed: Collection[str] = (),
        previous: Previous | None = None,
        revision: tuple[str, str] | None = None,
    ) -> None:
        self.agent = agent
        self.outputs = upstream_outputs
        self.inputs = inputs
        self.values = upstream_values
        self.previous = previous
        # An output placed in the system prompt is placed too: do not send it twice.
        placed = referenced_agents(agent.task) | referenced_agents(agent.system or "") | set(fed)
        block = [(name, output) for name, output in upstream_outputs.items() if name not in placed]
        suffix = ""
        if block:
            sections = "\n\n".join(f"### {name}\n{output}" for name, output in block)
            suffix = f"\n\n{CONTEXT_HEADER}\n{sections}\n{CONTEXT_FOOTER}"
        if revision is not None:
            answer, feedback = revision
            suffix += (
                f"\n\n{REVISION_HEADER}\n{answer}\n{REVISION_FOOTER}\n"
                f"A reviewer sent it back with this feedback; answer again, following it:\n{feedback}"
            )
        self.suffix = suffix  # appended to the rendered task

    def messages(self, item: ItemScope | None = None) -> tuple[Message, ...]:
        """The messages, for a fan-out instance with its ``item``."""
        agent = self.agent
        text = render(
            agent.task, self.outputs, self.inputs, self.values, item=item, previous=self.previous
        )
        user_message = Message("user", text + self.suffix if self.suffix else text)
        if not agent.system:
            return (user_message,)
        system_text = render(
            agent.system, self.outputs, self.inputs, self.values, item=item, previous=self.previous
        )
        return (Message("system", system_text), user_message)


def build_messages(
    agent: Agent,
    upstream_outputs: Mapping[str, str],
    inputs: Mapping[str, Any],
    upstream_values: Mapping[str, Any] | None = None,
    *,
    item: ItemScope | None = None,
    fed: Collection[str] = (),
    previous: Previous | None = None,
    revision: tuple[str, str] | None = None,
) -> tuple[Message, ...]:
    """The messages sent for ``agent`` (see ``Prompt``), for one run."""
    prompt = Prompt(
        agent,
        upstream_outputs,
        inputs,
        upstream_values,
        fed=fed,
        previous=previous,
        revision=revision,
    )
    return prompt.messages(item)


def prompt_text(messages: tuple[Message, ...]) -> str:
    """Messages as one readable text, for the history and the terminal."""
    if len(messages) == 1:  # the common case, without a generator
        return f"[{messages[0].role}]\n{messages[0].content}"
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)


__all__ = ["CONTEXT_FOOTER", "CONTEXT_HEADER", "Prompt", "build_messages", "prompt_text"]
