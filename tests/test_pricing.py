"""Prices and the cost estimate."""

from __future__ import annotations

from pathlib import Path

from reviewer import pricing
from reviewer.cli import main
from reviewer.models import Usage

DIFFS = Path(__file__).parent / "data" / "diffs"


def test_cost_uses_every_token_kind_and_the_batch_discount() -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_creation_input_tokens=1_000_000,
                  cache_read_input_tokens=1_000_000)
    assert pricing.cost("claude-sonnet-5-5", usage) == 2 + 10 + 2.5 + 0.2
    assert pricing.cost("claude-sonnet-5-5", usage, batch=True) == (2 + 10 + 2.5 + 0.2) / 2


def test_haiku_5_5_long_prompts_bill_at_the_higher_rate() -> None:
    short = pricing.cost("claude-haiku-5-5", Usage(input_tokens=100_000))
    long = pricing.cost("claude-haiku-5-5", Usage(input_tokens=100_001))
    assert long / short > 4


def test_unknown_model_has_no_price_and_a_clear_note() -> None:
    assert pricing.cost("claude-future-9", Usage(input_tokens=10)) is None
    assert "claude-future-9" in pricing.unknown_price_note("claude-future-9")


def test_dry_run_with_an_unpriced_model_says_so_instead_of_crashing(capsys, no_anthropic) -> None:
    code = main(["review", "--diff", str(DIFFS / "multi_hunk.diff"), "--dry-run", "--model", "claude-future-9"])
    out = capsys.readouterr().out
    assert code == 0
    assert "cost     ~unknown" in out and "no price is known for model 'claude-future-9'" in out
