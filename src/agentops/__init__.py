"""AgentOps: a runtime for multi-agent LLM workflows defined in YAML.

The public Python API is exactly ``__all__``. Names are imported on first use
(PEP 562) so that ``agentops --help`` and the history commands stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentops.errors import (
    AgentOpsError,
    ConfigurationError,
    CostCapError,
    ProviderError,
    RunNotFoundError,
    StoreError,
    ToolServerError,
    UsageError,
    WorkflowError,
)
from agentops.lazy import lazy_getattr as _lazy_getattr

if TYPE_CHECKING:
    from agentops.api import arerun, aresume, arun, rerun, resume, run
    from agentops.providers.fake import FakeProvider
    from agentops.runtime.events import AgentResult, AgentStatus, Attempt, RunStatus, WorkflowResult
    from agentops.runtime.usage import Usage
    from agentops.workflow.loader import LoadedWorkflow, load_workflow, load_workflow_text
    from agentops.workflow.spec import Workflow

__version__ = "0.1.0"

_LAZY = {
    "run": ".api",
    "arun": ".api",
    "resume": ".api",
    "aresume": ".api",
    "rerun": ".api",
    "arerun": ".api",
    "AgentResult": ".runtime.events",
    "AgentStatus": ".runtime.events",
    "Attempt": ".runtime.events",
    "RunStatus": ".runtime.events",
    "Usage": ".runtime.usage",
    "WorkflowResult": ".runtime.events",
    "LoadedWorkflow": ".workflow.loader",
    "load_workflow": ".workflow.loader",
    "load_workflow_text": ".workflow.loader",
    "FakeProvider": ".providers.fake",
    "Workflow": ".workflow.spec",
}

__all__ = [
    "AgentOpsError",
    "AgentResult",
    "AgentStatus",
    "Attempt",
    "ConfigurationError",
    "CostCapError",
    "FakeProvider",
    "LoadedWorkflow",
    "ProviderError",
    "RunNotFoundError",
    "RunStatus",
    "StoreError",
    "ToolServerError",
    "Usage",
    "UsageError",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "__version__",
    "arerun",
    "aresume",
    "arun",
    "load_workflow",
    "load_workflow_text",
    "rerun",
    "resume",
    "run",
]


__getattr__ = _lazy_getattr(__name__, _LAZY)
