"""Agent runs on a Ray cluster (``--executor ray``, the ``[ray]`` extra).

The driver (the ``agentops`` process) keeps scheduling, the history, the terminal view and
the cost ledger; each agent's run (its turns, tool calls and re-asks) is a Ray task, the
same for a run and for every row of a batch:

- ``session``: connecting for one command (an address probed first, or a local Ray bound to
  127.0.0.1, started and stopped with the command), what travels with the job (the
  workflow's folder, the variables it reads), the agents' ``resources:`` checked against
  the nodes.
- ``ledger``: one actor holding the budget, the concurrency slots and the provider pauses
  every worker's calls share (``CallLimits`` over Ray), each hold kept under its holder so
  that a worker lost mid-call is charged its reserved worst case.
- ``worker``: what runs in a Ray worker process: the workflow's providers and tools built
  once per process, one agent's run, its events sent back in batches.
- ``runner``: ``RayAgentRunner``, the engine's ``AgentRunner`` on the driver: ships the run,
  replays its events, runs it again on another node when its node is lost.

Nothing here is imported unless Ray is asked for: ``ray`` stays out of every other command.
"""
