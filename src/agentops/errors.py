"""The error tree: one type per thing a user can fix.

Every message says what happened, where, and what to do. The CLI turns any
``AgentOpsError`` into one line on stderr and an exit code; nothing else in the
package prints tracebacks.

    AgentOpsError
    ├── WorkflowError             the workflow file is invalid (one Diagnostic per problem)
    ├── UsageError                bad CLI arguments or run inputs
    ├── ConfigurationError        provider not configured, optional extra missing
    ├── CostCapError              the cost cap cannot be guaranteed (model without a price)
    ├── ToolServerError           an MCP server did not start (names its command and stderr)
    ├── StoreError                the history database cannot be used
    │   └── RunNotFoundError      no such workflow run / agent run id
    └── ProviderError             one call to a model failed (carries status, retryability)
        ├── TransientProviderError          worth retrying
        │   ├── RateLimitError              429 (with retry_after when the server said)
        │   ├── ServerError                 5xx, 408, 409
        │   │   └── ModelCrashedError       the local model's worker process died (names the signal)
        │   ├── ProviderTimeoutError        the attempt ran past its timeout
        │   ├── ProviderConnectionError     connection refused / dropped
        │   ├── MalformedResponseError      unparseable JSON, truncated stream
        │   └── ResponseFormatRefusedError  a compatible server refused OpenAI's json_schema form (the next
        │                                   attempt sends the json_object form)
        └── PermanentProviderError          retrying cannot help
            ├── AuthenticationError         401/403: names the variable to fix
            ├── ModelNotFoundError          404: names the model or deployment
            ├── BadRequestError             400/422
            ├── ContentPolicyError          the provider refused the content
            └── QuotaExhaustedError         429 insufficient_quota: billing, not a rate limit
"""

from __future__ import annotations

from dataclasses import dataclass


def describe_exception(error: BaseException, limit: int = 500) -> str:
    """One line for an exception nobody raised on purpose: its type and its message."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    message = " ".join(str(error).split())
    return (f"{type(error).__name__}: {message}" if message else type(error).__name__)[:limit]


class AgentOpsError(Exception):
    """Base of every error the package raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a workflow file, located to line and column (1-based)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class WorkflowError(AgentOpsError):
    """The workflow file is invalid; ``diagnostics`` lists every problem found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class UsageError(AgentOpsError):
    """Bad command-line arguments or run inputs."""


class ConfigurationError(AgentOpsError):
    """A provider is not configured, or an optional dependency is not installed."""


class CostCapError(AgentOpsError):
    """The cost cap could not be guaranteed, so the run was refused before it started."""


class ToolServerError(AgentOpsError):
    """An MCP server could not be started, so the run was refused before any model call."""


class StoreError(AgentOpsError):
    """The history database cannot be opened, read or written."""


class RunNotFoundError(StoreError):
    """No workflow run or agent run with the given id."""


class ProviderError(AgentOpsError):
    """One call to a model failed.

    ``retryable`` decides whether the engine tries again; ``retry_after`` is the
    delay in seconds the server asked for, if any; ``status`` the HTTP status.
    """

    retryable = False
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransientProviderError(ProviderError):
    retryable = True


class RateLimitError(TransientProviderError):
    pass


class ServerError(TransientProviderError):
    pass


class ModelCrashedError(ServerError):
    """The local model's worker process died mid-call; the retry gets a fresh one."""


class ProviderTimeoutError(TransientProviderError):
    pass


class ProviderConnectionError(TransientProviderError):
    pass


class MalformedResponseError(TransientProviderError):
    pass


class ResponseFormatRefusedError(TransientProviderError):
    """An OpenAI-compatible server refused ``response_format: {type: json_schema}``; the provider
    switches to ``{type: json_object, schema}`` (llama-cpp-python's form) for the next attempt."""


class PermanentProviderError(ProviderError):
    retryable = False


class AuthenticationError(PermanentProviderError):
    pass


class ModelNotFoundError(PermanentProviderError):
    pass


class BadRequestError(PermanentProviderError):
    pass


class ContentPolicyError(PermanentProviderError):
    pass


class QuotaExhaustedError(PermanentProviderError):
    pass
