"""Modules imported at their first use, not at start-up.

The anthropic SDK takes a second or more to import. Commands that send
nothing (`--help`, `--dry-run`, `schema`, `audit plan|status|list`) never touch
it, so the modules that call the API name it through `sdk()`: a module object
whose import runs at its first attribute access (`importlib.util.LazyLoader`).
"""

from __future__ import annotations

import gc
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
        # NOTE: the SDK's import makes ~190,000 objects (some 1,500 pydantic classes), none of
        # them garbage, and as the heap grows the collector makes full passes over all of them:
        # 0.3-0.4 s of the import's 1.3-1.7 s of CPU (measured with gc.callbacks), all of it on
        # the way to a review's first model call. So collection waits until the import is done.
        collecting = gc.isenabled()
        gc.disable()
        try:
            # Any attribute read runs the deferred import.
            getattr(target, "__version__", None)
        except Exception:  # noqa: BLE001 - `ready` lets the real use raise it
            pass
        finally:
            if collecting:
                gc.enable()

    thread = threading.Thread(target=load, name=f"import {name}", daemon=True)
    _warming[name] = thread
    thread.start()


_settled = threading.Lock()
_frozen = False


def ready(name: str) -> None:
    """Wait for `warm(name)`, if it was started, so the module is never loaded by two threads at once.

    The first call in a process also freezes what exists by then (`gc.freeze`),
    the SDK's objects above all: they live as long as the process, and every
    full collection during a review would walk them again, about 0.15 s each,
    stopping the event loop and the tool threads (bench/tools_bench.py at
    concurrency 64). Refcounting still frees frozen objects; only cyclic garbage
    pending at that moment is kept, once.
    """
    global _frozen
    thread = _warming.get(name)
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    with _settled:
        if not _frozen:
            _frozen = True
            gc.freeze()
