"""Retry decisions as pure functions: randomness and attempt numbers are passed in."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter: delay = rand * min(cap, base * 2**(attempt-1))."""

    model_config = ConfigDict(frozen=True)

    max_tries: int = Field(default=3, ge=1, le=100)
    base_seconds: float = Field(default=1.0, ge=0)
    cap_seconds: float = Field(default=600.0, ge=0)


def backoff_ceiling(attempt: int, policy: RetryPolicy) -> float:
    """The largest delay allowed after failed attempt number ``attempt`` (1-based)."""
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 s is already past any cap
    return float(min(policy.cap_seconds, policy.base_seconds * (2**exponent)))


def next_delay(attempt: int, policy: RetryPolicy, rand: float) -> float:
    """Delay before the next try after ``attempt`` failed; ``rand`` is uniform in [0, 1)."""
    return backoff_ceiling(attempt, policy) * min(max(rand, 0.0), 1.0)


def should_retry(counted_attempts: int, policy: RetryPolicy, *, retryable: bool) -> bool:
    """Retry while the error is transient and tries remain; interrupted runs are not counted."""
    return retryable and counted_attempts < policy.max_tries
