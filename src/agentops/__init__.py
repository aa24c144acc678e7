"""AgentOps: a runtime for multi-agent LLM workflows defined in YAML.

The public Python API is exactly ``__all__``. Names are imported on first use
(PEP 562) so that ``agentops --help`` and the history commands stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
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
from .lazy import lazy_getattr as _lazy_getattr

if TYPE_CHECKING:
    from .api import aresume, arun, resume, run
    from .events import AgentResult, AgentStatus, Attempt, RunStatus, WorkflowResult
    from .loader import LoadedWorkflow, load_workflow, load_workflow_text
    from .providers.fake import FakeProvider
    from .spec import Workflow
    from .usage import Usage

__version__ = "0.1.0"

_LAZY = {
    "run": ".api",
    "arun": ".api",
    "resume": ".api",
    "aresume": ".api",
    "AgentResult": ".events",
    "AgentStatus": ".events",
    "Attempt": ".events",
    "RunStatus": ".events",
    "Usage": ".usage",
    "WorkflowResult": ".events",
    "LoadedWorkflow": ".loader",
    "load_workflow": ".loader",
    "load_workflow_text": ".loader",
    "FakeProvider": ".providers.fake",
    "Workflow": ".spec",
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
    "aresume",
    "arun",
    "load_workflow",
    "load_workflow_text",
    "resume",
    "run",
]


__getattr__ = _lazy_getattr(__name__, _LAZY)
