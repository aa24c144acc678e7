"""The provider vocabulary of a workflow file: the kinds it may name and the forms an
endpoint may take an output schema in.

A leaf: the spec types ``providers.NAME.type`` and ``providers.NAME.response_format``
with these, the checks list the built-in provider names from them, and ``providers/``
keys its table of capabilities (``providers.kinds``) and its endpoints by them.
"""

from __future__ import annotations

import typing
from typing import Literal

ProviderKind = Literal["openai", "azure", "local"]
"""The kinds a workflow may name; ``providers.kinds.PROVIDER_KINDS`` has one row for each."""

BUILTIN_PROVIDERS: tuple[ProviderKind, ...] = typing.get_args(ProviderKind)
"""Provider names that need no ``providers:`` entry, in the order messages list them."""

ResponseFormatForm = Literal["auto", "json_schema", "json_object", "none"]
"""How an endpoint takes an output schema (``providers.NAME.response_format``):
``json_schema`` is OpenAI's form (OpenAI, Azure, vLLM); ``json_object`` sends
``{type: json_object, schema}`` (llama-cpp-python's server and some hosted servers
take it); ``none`` sends nothing (the answer is only validated); ``auto`` is
``json_schema``, switching to ``json_object`` when an OpenAI-compatible server
refuses it."""


__all__ = ["BUILTIN_PROVIDERS", "ProviderKind", "ResponseFormatForm"]
