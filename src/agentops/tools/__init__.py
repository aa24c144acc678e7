"""Tools an agent's model may call: Python functions and MCP servers.

``catalog`` turns the workflow's ``tools:`` into loaded tools before anything
runs (Python functions imported and described by a JSON schema, ``${VAR}``
expanded); ``runtime`` starts the MCP servers once per run, gives each agent
its own table of tools with unique names, runs the calls the model asks for
and records them as events; ``python`` and ``mcp`` are the two kinds;
``environment`` expands ``${VAR}`` and keeps the values secret.

The ``mcp`` SDK is imported only by ``mcp``, and only when a workflow has an
MCP server.
"""
