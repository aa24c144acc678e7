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
    """The messages sent for ``agent``, given its succeeded direct dependencies' outputs
    (and the parsed values of those with an output schema). A fan-out instance gets its
    ``item``; ``fed``: agents whose output reaches it as that item, so not as a whole too.
    A loop's member gets ``previous``, what the loop's members answered one iteration back.
    An answer a person sent back (``approval: after``) comes as ``revision``: (that answer,
    their feedback), appended to the task."""
    text = render(
        agent.task, upstream_outputs, inputs, upstream_values, item=item, previous=previous
    )
    # An output placed in the system prompt is placed too: do not send it twice.
    placed = referenced_agents(agent.task) | referenced_agents(agent.system or "") | set(fed)
    block = [(name, output) for name, output in upstream_outputs.items() if name not in placed]
    if block:
        sections = "\n\n".join(f"### {name}\n{output}" for name, output in block)
        text = f"{text}\n\n{CONTEXT_HEADER}\n{sections}\n{CONTEXT_FOOTER}"
    if revision is not None:
        answer, feedback = revision
        text = (
            f"{text}\n\n{REVISION_HEADER}\n{answer}\n{REVISION_FOOTER}\n"
            f"A reviewer sent it back with this feedback; answer again, following it:\n{feedback}"
        )
    messages = []
    if agent.system:
        messages.append(
            Message(
                "system",
                render(
                    agent.system,
                    upstream_outputs,
                    inputs,
                    upstream_values,
                    item=item,
                    previous=previous,
                ),
            )
        )
    messages.append(Message("user", text))
    return tuple(messages)


def prompt_text(messages: tuple[Message, ...]) -> str:
    """Messages as one readable text, for the history and the terminal."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)


__all__ = ["CONTEXT_FOOTER", "CONTEXT_HEADER", "build_messages", "prompt_text"]
