"""Prices per model and the cost of a call's usage.

Source: https://platform.claude.com/docs/en/about-claude/pricing and the model
overview pages, read 2026-11-01.
USD per million tokens. Cache writes use the 5-minute rate (the only TTL reviewer
asks for). The Message Batches API bills 50% of every figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .models import Usage

PRICES_AS_OF = "2026-11-01"
BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float


_OPUS_4 = Price(5, 25, 6.25, 0.50)
_SONNET_4 = Price(3, 15, 3.75, 0.30)

PRICES: dict[str, Price] = {
    "claude-fable-5-2": Price(8, 40, 10, 0.20),
    "claude-fable-5-1": Price(10, 50, 12.50, 0.25),
    "claude-opus-5-5": Price(4, 20, 5, 0.20),
    # The pricing page lists 0.20 for reads; a third-party report says 0.10 since
    # 2026-10-07. We keep the documented figure, so estimates err high.
    "claude-sonnet-5-5": Price(2, 10, 2.50, 0.20),
    "claude-haiku-5-5": Price(0.10, 0.50, 0.125, 0.01),
    "claude-opus-5": _OPUS_4,
    "claude-opus-4-8": _OPUS_4,
    "claude-opus-4-7": _OPUS_4,
    "claude-opus-4-6": _OPUS_4,
    "claude-opus-4-5": _OPUS_4,
    "claude-opus-4-5-20251101": _OPUS_4,
    "claude-sonnet-5": Price(2, 10, 2.50, 0.20),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-5-20250929": _SONNET_4,
    "claude-haiku-4-5": Price(1, 5, 1.25, 0.10),
    "claude-haiku-4-5-20251001": Price(1, 5, 1.25, 0.10),
}

# Haiku 5.5 bills the whole request at a higher rate once its prompt passes 100K tokens.
_LONG_PROMPT = {"claude-haiku-5-5": (100_000, Price(0.50, 2.50, 0.625, 0.05))}


def price_for(model: str, prompt_tokens: int = 0) -> Price | None:
    price = PRICES.get(model)
    long = _LONG_PROMPT.get(model)
    if long and prompt_tokens > long[0]:
        return long[1]
    return price


def cost(model: str, usage: Usage, *, batch: bool = False) -> float | None:
    """USD for `usage` on `model`, or None when the model's price is unknown."""
    price = price_for(model, usage.total_input)
    if price is None:
        return None
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000
    return total * (BATCH_DISCOUNT if batch else 1.0)


def unknown_price_note(model: str) -> str:
    return (
        f"no price is known for model '{model}' (table as of {PRICES_AS_OF}); "
        "its cost is not counted"
    )


def estimate_tokens(text: str) -> int:
    """Rough token count: one token per four characters.

    Good enough for budgets and the dry-run estimate; real counts come back in
    each response's usage.
    """
    return math.ceil(len(text) / 4) if text else 0


def usd(value: float | None, approx: bool = False) -> str:
    """A cost as people read it: `$0.1234`, `~$0.1234` for an estimate, `unknown` without a price."""
    return "unknown" if value is None else f"{'~' if approx else ''}${value:.4f}"


def over_budget(cost_usd: float | None, max_cost: float | None, sends: bool) -> str | None:
    """Why an estimate of `cost_usd` may not be spent under `max_cost` USD, or None.

    The one cost gate of the review (`--max-cost`, `max_cost`) and the audit:
    an estimate above the ceiling, or one that cannot be made (a model without
    a known price), is refused; nothing to send (`sends` false) passes.
    """
    if max_cost is None or not sends:
        return None
    if cost_usd is None:
        return f"the cost cannot be estimated (unknown price), so --max-cost ${max_cost:.4f} cannot be checked"
    if cost_usd > max_cost:
        return f"estimated cost ${cost_usd:.4f} is above --max-cost ${max_cost:.4f}"
    return None
