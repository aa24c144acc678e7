"""Package attributes imported on first use (PEP 562), so importing a package stays light.

A package lists which of its names live in which submodule and installs the
result as its module-level ``__getattr__``:

    _LAZY = {"RunRecorder": ".recorder"}
    __getattr__ = lazy_getattr(__name__, _LAZY)

The first access imports the submodule and keeps the value on the package, so
later accesses are plain attribute reads. Type checkers see the same names through
the package's ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from ``sources[name]``
    (a module name relative to ``package``) on first use."""

    def __getattr__(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


__all__ = ["lazy_getattr"]
