"""The workflow as written: the YAML read with positions (``yaml_source``), the spec, loading
(``loader``) and the checks run before anything is spent (``checks``), the dependency graph,
templates, the schema checks (``schemas``), the provider names a workflow may write
(``provider_kinds``), inputs and did-you-mean suggestions. Nothing here calls a model, and nothing
here imports a layer above it."""
