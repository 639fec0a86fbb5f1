"""The nightly whole-repository audit through the Message Batches API.

    plan.py     git ls-files -> skips with reasons, chunks, content keys, custom_ids, estimate
    state.py    SQLite: runs, requests, batches, results; migrations; one transaction per transition
    submit.py   canary (synchronous calls), batches within the limits, intent rows, reconciliation
    collect.py  polling, streamed results, validation and quarantine, retries, re-chunking
    report.py   SARIF, Markdown, JSON (schemas/audit-report.schema.json), signed webhook
    runner.py   the commands: run, collect, cancel, plan, status, list
    cli.py      the `reviewer audit` click group (thin)

A request's life: planned -> (canary: answered synchronously) or submitting
(an intent row, written before the create call) -> submitted (the batch id is
known) -> succeeded | quarantined | failed | canceled | split. Errored and
expired results go back to planned under a new custom_id (`-r<attempt>`)
until `max_attempts`. Nothing is ever submitted twice: see `submit`. A part
whose answer was quarantined or whose request the API rejected is remembered
by its content key and left out of later runs until that key changes or
`--retry-failed` asks for it; see `collect` and `plan`.

The library never prints; it reports through a `Progress` (reviewer.progress) the CLI builds.
"""

from __future__ import annotations

from ..progress import Progress

__all__ = ["Progress"]
