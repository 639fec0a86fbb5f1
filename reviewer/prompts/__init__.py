"""Prompt templates (text files in this folder) and the prompt version.

A change to any template changes PROMPT_VERSION, which the audit puts in its
custom_ids, so edited prompts are never mistaken for already-answered ones.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from string import Template

NAMES = ("system", "per_file", "cross_file", "aggregate", "repair", "prior", "audit", "tools", "verify")


@functools.cache
def text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """Fill `$placeholders`; values are inserted verbatim (a `$` in code is safe)."""
    return Template(text(name)).substitute({k: str(v) for k, v in values.items()})


def boundary(*parts: str) -> str:
    """A tag suffix derived from the content it wraps.

    Untrusted code cannot close a block it cannot predict the name of: the
    suffix is a hash of the very text that would have to contain it.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:12]


@functools.cache
def version() -> str:
    digest = hashlib.sha256()
    for name in NAMES:
        try:
            digest.update(text(name).encode())
        except FileNotFoundError:
            continue
    return digest.hexdigest()[:8]
