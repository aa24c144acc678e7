"""Pydantic models of a workflow file: Workflow, Agent, Policies and friends.

Every model forbids unknown keys so that a typo is an error, never silently
ignored. Cross-field checks that need the whole workflow (unknown dependencies,
cycles, template references) live in ``graph`` and ``templates``; ``loader``
turns all of them into ``file:line:column`` diagnostics.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentops.workflow.durations import parse_duration
from agentops.workflow.provider_kinds import ProviderKind, ResponseFormatForm

DEFAULT_RETRIES = 2
DEFAULT_MAX_CONCURRENCY = 16
DEFAULT_MAX_TOKENS = 1024
DEFAULT_MAX_TURNS = 10
DEFAULT_PARALLEL_TOOL_CALLS = 8
DEFAULT_TOOL_TIMEOUT = 60.0
DEFAULT_STARTUP_TIMEOUT = 30.0
DEFAULT_OUTPUT_RETRIES = 1
DEFAULT_MAX_ITEMS = 100
MAX_ITERATIONS = 100  # a loop's max_iterations is at most this

# What a user may write under ``depends_on``: a name, a list (all of), a
# ``{all: [...]}`` / ``{any: [...]}`` mapping (nesting), or a string expression
# such as ``"a && (b || c)"``. ``graph.parse_condition`` gives it meaning.
CacheMode = Literal["off", "read", "read_write"]

DependsOn = Union[str, list[Union[str, dict[str, Any]]], dict[str, Any], None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backoff(_Strict):
    """Exponential backoff with full jitter: delay before retry n (1, 2, ...) = uniform(0, min(max, base * 2**(n-1)))."""

    base: float = Field(
        default=1.0, ge=0, description="seconds before the first retry (upper bound)"
    )
    max: float = Field(default=30.0, ge=0, description="the longest delay between two attempts")


class Policies(_Strict):
    retries: int = Field(default=DEFAULT_RETRIES, ge=0, le=100)
    cost_cap: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="USD; the run never spends more"
    )
    budget: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="a named budget (agentops budget set) every run draws on, beside cost_cap",
    )
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=100_000)
    timeout: float | None = Field(default=None, gt=0, description="seconds for the whole run")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    backoff: Backoff = Backoff()
    max_turns: int = Field(
        default=DEFAULT_MAX_TURNS, ge=1, le=1000, description="model calls in a tool loop"
    )
    max_parallel_tool_calls: int = Field(default=DEFAULT_PARALLEL_TOOL_CALLS, ge=1, le=1000)
    # The response cache (``agentops.runtime.cache``): off, read hits only, or read and write.
    cache: CacheMode = "off"
    cache_ttl: str | None = Field(
        default=None, description="entries older than this are not read (30s, 15m, 12h, 7d, 2w)"
    )

    @field_validator("cache_ttl")
    @classmethod
    def _ttl_is_a_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # its ValueError names the form
        return value

    @property
    def cache_ttl_seconds(self) -> float | None:
        return None if self.cache_ttl is None else parse_duration(self.cache_ttl)

    # Where agent runs are carried out: here, or as tasks on a Ray cluster (the [ray] extra).
    executor: Literal["local", "ray"] = "local"


class McpSpec(_Strict):
    """An MCP server: over stdio (``command``, ``args``, ``env``) or streamable HTTP (``url``, ``headers``).

    Which one is decided by ``command`` or ``url``; ``checks`` reports a mapping with both or neither.
    ``${VAR}`` in ``env`` and ``headers`` values comes from the environment when the run starts.
    """

    command: str | None = Field(default=None, min_length=1)
    args: list[str] = []
    env: dict[str, str] = {}
    url: str | None = Field(default=None, min_length=1)
    headers: dict[str, str] = {}


class ToolSpec(_Strict):
    """A tool (``python: "module:function"``) or a server of tools (``mcp: {...}``)."""

    python: str | None = Field(default=None, min_length=1)
    mcp: McpSpec | None = None
    timeout: float = Field(default=DEFAULT_TOOL_TIMEOUT, gt=0, description="seconds per call")
    allow: list[str] | None = None  # mcp: only these of the server's tools
    prefix: str | None = None  # prepended to the names the model sees
    on_tool_error: Literal["return", "fail"] = "return"
    # Its results join the response cache when the run's cache is on (same tool, same
    # arguments: the call is answered from there); off by default, as a tool may act on the world.
    cache: bool = False
    startup_timeout: float = Field(
        default=DEFAULT_STARTUP_TIMEOUT, gt=0, description="mcp: seconds to start"
    )


class ProviderSpec(_Strict):
    """A named endpoint, used by ``provider: NAME`` on an agent."""

    type: ProviderKind = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None
    deployment: str | None = None
    response_format: ResponseFormatForm = "auto"  # how the server takes an output schema


class InputSpec(_Strict):
    description: str | None = None
    default: str | int | float | bool | None = None
    required: bool | None = None


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(
        ge=0, allow_inf_nan=False
    )  # an infinite price would make any cap refuse every call
    output: float = Field(ge=0, allow_inf_nan=False)


class OutputSpec(_Strict):
    """Structured output: the answer must be JSON following ``schema`` (written ``schema:``).

    ``schema`` is a JSON Schema inline, or the path of a JSON (or YAML) file relative to
    the workflow file (the loader reads it); in Python also a pydantic model class,
    turned into its JSON Schema here. ``retries``: re-asks when an answer does not validate.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Not ``schema``: that name shadows a (deprecated) BaseModel method.
    json_schema: dict[str, Any] | bool | str = Field(alias="schema")
    retries: int = Field(default=DEFAULT_OUTPUT_RETRIES, ge=0, le=20)

    @field_validator("json_schema", mode="before")
    @classmethod
    def _model_class_to_schema(cls, value: Any) -> Any:
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value.model_json_schema()
        return value

    @property
    def schema_dict(self) -> dict[str, Any] | bool:
        """The schema, once a path has been read (``loader``); a path still unread is an error."""
        if isinstance(self.json_schema, str):
            raise ValueError(
                f"the output schema file {self.json_schema!r} was not read; load the workflow with agentops.load"
            )
        return self.json_schema


class Resources(_Strict):
    """What one run of the agent holds on a Ray worker (``executor: ray``); Ray places it on a
    node where they are free. Unset: Ray's default, one CPU."""

    num_cpus: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    num_gpus: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    custom: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = {}


class ApprovalSpec(_Strict):
    """``approval: {mode: before, timeout: 86400, on_timeout: reject}``."""

    mode: Literal["before", "after"]
    timeout: float | None = Field(default=None, gt=0, description="seconds a person has to decide")
    on_timeout: Literal["reject", "approve"] = "reject"


class Agent(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][\w\-]*$")
    model: str = Field(min_length=1)
    task: str = Field(min_length=1)
    depends_on: DependsOn = None
    provider: str | None = None
    system: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0, description="seconds per attempt")
    retries: int | None = Field(default=None, ge=0, le=100)
    tools: list[str] = []  # names under tools:, or SERVER.TOOL for one tool of an MCP server
    max_turns: int | None = Field(default=None, ge=1, le=1000)
    max_parallel_tool_calls: int | None = Field(default=None, ge=1, le=1000)
    output: OutputSpec | None = None  # structured output: a JSON Schema the answer must follow
    # Fan-out: an expression naming a list (``planner.output.sections``); the agent runs once per
    # item, and its output is the list of its instances' outputs. Implies depends_on its agent.
    for_each: str | None = Field(default=None, min_length=1)
    max_items: int | None = Field(default=None, ge=1, le=1_000_000)  # None: DEFAULT_MAX_ITEMS
    on_item_error: Literal["fail", "continue"] = "fail"  # continue: a failed item is null
    # Routing: an expression over upstream outputs; false skips the agent (routed away).
    when: str | None = Field(default=None, min_length=1)
    resources: Resources | None = None  # executor: ray: what each of its runs holds on a node
    # A person approves before it runs (its prompt) or after (its answer, before any dependent
    # sees it; or sends it back with feedback).
    approval: Literal["before", "after"] | ApprovalSpec | None = None

    @property
    def approval_spec(self) -> ApprovalSpec | None:
        if isinstance(self.approval, str):
            return ApprovalSpec(mode=self.approval)
        return self.approval


class LoopSpec(_Strict):
    """A bounded loop: ``agents`` (an acyclic group) run in dependency order as one unit,
    again and again, until ``until`` holds after an iteration or ``max_iterations`` have run."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][\w\-]*$")
    agents: list[str] = Field(min_length=1)
    # The expression language of ``when``, over the outputs of this iteration's members;
    # None: every iteration runs.
    until: str | None = Field(default=None, min_length=1)
    max_iterations: int = Field(ge=1, le=MAX_ITERATIONS)
    # continue: the last iteration's outputs stand; fail: the loop (each member) fails.
    on_max_iterations: Literal["continue", "fail"] = "continue"


class Workflow(_Strict):
    name: str = Field(min_length=1)
    description: str | None = None
    policies: Policies = Policies()
    inputs: dict[str, InputSpec | str | int | float | bool | None] = {}
    prices: dict[str, Price] = {}
    providers: dict[str, ProviderSpec] = {}
    tools: dict[str, ToolSpec] = {}
    agents: list[Agent] = Field(min_length=1)
    loops: list[LoopSpec] = []

    def agent(self, name: str) -> Agent:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise KeyError(name)

    def input_default(self, name: str) -> Any:
        """The default of a declared input, or None when it has none."""
        declared = self.inputs[name]
        return declared.default if isinstance(declared, InputSpec) else declared

    def effective_retries(self, agent: Agent) -> int:
        return self.policies.retries if agent.retries is None else agent.retries

    def effective_max_tokens(self, agent: Agent) -> int:
        return agent.max_tokens or self.policies.max_tokens

    def effective_temperature(self, agent: Agent) -> float | None:
        return self.policies.temperature if agent.temperature is None else agent.temperature

    def effective_max_turns(self, agent: Agent) -> int:
        """Model calls in the agent's loop: one without tools."""
        if not agent.tools:
            return 1
        return self.policies.max_turns if agent.max_turns is None else agent.max_turns

    def effective_max_items(self, agent: Agent) -> int:
        return DEFAULT_MAX_ITEMS if agent.max_items is None else agent.max_items

    def effective_parallel_tool_calls(self, agent: Agent) -> int:
        limit = agent.max_parallel_tool_calls
        return self.policies.max_parallel_tool_calls if limit is None else limit
