"""Running one workflow: the scheduler (``engine``), one agent's run (``agent_run``) and what
it starts from (``agent_setup``, ``prompts``, ``structured``), the seams it
calls through (the provider protocol and ``Route`` in ``provider``, the executor, the budget and
call limits) and the events it emits for the store, the views and tracing to subscribe to. It
imports no store, view or tracer."""
