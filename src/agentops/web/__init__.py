"""The local web view of the history (``agentops ui``, the ``[ui]`` extra).

Modules: ``serve`` (the command: address checks, binding, uvicorn), ``app``
(the Starlette application, its routes, live updates and security headers),
``pages`` (what each page shows), ``state`` (a run's agents and their statuses,
from the store's read interface), ``layout`` (the graph's boxes, groups and
grandalf layout), ``templates/`` (Jinja2, autoescaped) and ``static/`` (one
stylesheet, one script). Nothing here is imported by any other command.
"""
