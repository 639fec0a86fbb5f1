"""A whole-run deadline, and synchronous API calls that never outlive it.

`review --timeout` and `audit run --timeout` give a run a point in time by
which it stops (issue 11: an endpoint that accepts connections and never
answers kept a review waiting about 50 minutes, 300 s x 5 attempts per pass,
and an audit's canary ignored `--timeout`). The review is asynchronous and
cancels its calls in flight at the deadline (`client.ModelClient`); the
audit's calls are synchronous, so each one is given at most the time left
(`call`), with the SDK's retries replaced by the same policy bounded by it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import lazy

if TYPE_CHECKING:
    import anthropic
else:
    anthropic = lazy.module("anthropic")  # imported at first use: start-up stays fast

T = TypeVar("T")

# The SDK's own retry policy (anthropic `_base_client`): 0.5 s doubling up to
# 8 s with jitter, `retry-after` honoured up to 60 s.
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0
DEFAULT_PER_CALL = 180.0


class DeadlineReached(Exception):
    """The run's deadline passed before this step was done; what is done is saved."""


@dataclass
class Deadline:
    """`seconds` from its creation, or never (`seconds` None)."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> float | None:
        return None if self.seconds is None else self.started + self.seconds

    def left(self) -> float | None:
        """Seconds left (0 once passed), None without a deadline."""
        return None if self.seconds is None else max(0.0, self.started + self.seconds - time.monotonic())

    def expired(self) -> bool:
        left = self.left()
        return left is not None and left <= 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def timeout(self, per_call: float) -> float:
        """The SDK timeout of one attempt: `per_call`, or less when less time is left."""
        left = self.left()
        return per_call if left is None else max(0.05, min(per_call, left))

    def check(self, what: str) -> None:
        """Raises DeadlineReached naming `what` when the deadline has passed."""
        if self.expired():
            raise DeadlineReached(f"--timeout {self.seconds:g}s reached {what}")

    def sleep(self, seconds: float, what: str, sleeper: Callable[[float], None] = time.sleep) -> None:
        """Sleep, unless the sleep would end past the deadline: then raise DeadlineReached at once."""
        left = self.left()
        if left is not None and seconds >= left:
            raise DeadlineReached(f"--timeout {self.seconds:g}s reached {what}")
        sleeper(seconds)

    def call(self, sdk: anthropic.Anthropic, fn: Callable[[anthropic.Anthropic], T], what: str) -> T:
        """`fn(client)` with the SDK's retries and timeout (`sdk`'s), all within the deadline.

        Without a deadline, `fn(sdk)` as it is. With one, each attempt gets at
        most the time left, and the retries (same statuses and backoff as the
        SDK's) stop at the deadline: raises DeadlineReached when the time is up
        before an answer, else what `fn` raised last.
        """
        if self.seconds is None:
            return fn(sdk)
        per_call = sdk.timeout if isinstance(sdk.timeout, (int, float)) else DEFAULT_PER_CALL
        for attempt in range(sdk.max_retries + 1):
            self.check(what)
            try:
                return fn(sdk.with_options(max_retries=0, timeout=self.timeout(per_call)))
            except (anthropic.APIConnectionError, anthropic.APIStatusError) as exc:
                wait = retry_wait(exc, attempt)
                if wait is None or attempt == sdk.max_retries:
                    if self.expired() and isinstance(exc, anthropic.APIConnectionError):
                        raise DeadlineReached(f"--timeout {self.seconds:g}s reached {what}") from exc
                    raise
                self.sleep(wait, what)
        raise AssertionError("unreachable")  # pragma: no cover


def retry_wait(exc: Exception, attempt: int) -> float | None:
    """Seconds before retrying after `exc` as the SDK would, or None when it would not retry."""
    if isinstance(exc, anthropic.APIStatusError):
        headers: Any = exc.response.headers
        hint = headers.get("x-should-retry")
        if hint == "false" or (hint != "true" and not (exc.status_code in (408, 409, 429) or exc.status_code >= 500)):
            return None
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                value = float(headers.get(name, "")) * scale
            except ValueError:
                continue
            if 0 <= value <= MAX_RETRY_AFTER:
                return value
    elif not isinstance(exc, anthropic.APIConnectionError):
        return None
    backoff = min(INITIAL_BACKOFF * 2 ** attempt, MAX_BACKOFF)
    return backoff * (1 - 0.25 * random.random())
