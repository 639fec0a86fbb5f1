"""Modules imported at their first use, not at start-up.

The anthropic SDK takes a second or more to import. Commands that send
nothing (`--help`, `--dry-run`, `schema`, `audit plan|status|list`) never touch
it, so the modules that call the API name it through `sdk()`: a module object
whose import runs at its first attribute access (`importlib.util.LazyLoader`).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
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


_warming: dict[str, threading.Thread] = {}


def warm(name: str) -> None:
    """Start importing `name` in a background thread, for a command that will use it.

    A review spends its first second reading the pull request from GitHub, mostly
    waiting on the network; the SDK's import (a second or more) overlaps that
    instead of delaying the first model call. `ready` waits for it to finish.
    """
    if name in _warming:
        return
    target = module(name)

    def load() -> None:
        try:
            # Any attribute read runs the deferred import.
            getattr(target, "__version__", None)
        except Exception:  # noqa: BLE001 - `ready` lets the real use raise it
            pass

    thread = threading.Thread(target=load, name=f"import {name}", daemon=True)
    _warming[name] = thread
    thread.start()


def ready(name: str) -> None:
    """Wait for `warm(name)`, if it was started, so the module is never loaded by two threads at once."""
    thread = _warming.get(name)
    if thread is not None and thread is not threading.current_thread():
        thread.join()
