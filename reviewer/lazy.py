"""Modules imported at their first use, not at start-up.

The anthropic SDK takes a second or more to import. Commands that send
nothing (`--help`, `--dry-run`, `schema`, `audit plan|status|list`) never touch
it, so the modules that call the API name it through `sdk()`: a module object
whose import runs at its first attribute access (`importlib.util.LazyLoader`).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def module(name: str) -> ModuleType:
    """`name` as a module that is imported when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    lazy = importlib.util.module_from_spec(spec)
    sys.modules[name] = lazy
    loader.exec_module(lazy)
    return lazy
