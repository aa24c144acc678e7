"""AgentOps: a runtime for multi-agent LLM workflows defined in YAML."""

from .errors import AgentOpsError

__all__ = ["AgentOpsError"]
__version__ = "0.1.0"
