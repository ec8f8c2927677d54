"""Job durations as a Prometheus-style histogram, accumulated in a worker between heartbeats.

A worker observes each finished attempt in memory; its heartbeat drains what accumulated and
adds it to the cluster-wide counts in Redis, so timing a job costs no Redis call of its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

# Upper bounds in seconds: jobs range from a few milliseconds (echo) to hours (large PDFs).
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
)  # fmt: skip


def bucket_label(upper: float) -> str:
    """How a bucket's upper bound is spelled in Redis fields and in the ``le`` label."""
    return "+Inf" if upper == float("inf") else repr(upper)


@dataclass
class TaskDurations:
    """Observations of one task: per-bucket counts (not cumulative), their sum and count."""

    buckets: dict[float, int] = field(default_factory=dict)
    total_seconds: float = 0.0
    count: int = 0

    def add(self, other: TaskDurations) -> None:
        for upper, n in other.buckets.items():
            self.buckets[upper] = self.buckets.get(upper, 0) + n
        self.total_seconds += other.total_seconds
        self.count += other.count


def bucket_of(seconds: float) -> float:
    """The smallest bucket bound at or above ``seconds`` (``inf`` past the last one)."""
    index = bisect.bisect_left(DURATION_BUCKETS, seconds)
    return DURATION_BUCKETS[index] if index < len(DURATION_BUCKETS) else float("inf")


class DurationRecorder:
    """What a worker observed since its last successful flush, per task."""

    def __init__(self) -> None:
        self._pending: dict[str, TaskDurations] = {}

    def observe(self, task: str, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        entry = self._pending.setdefault(task, TaskDurations())
        upper = bucket_of(seconds)
        entry.buckets[upper] = entry.buckets.get(upper, 0) + 1
        entry.total_seconds += seconds
        entry.count += 1

    def drain(self) -> dict[str, TaskDurations]:
        """Everything pending, now owned by the caller; ``restore`` it if the flush fails."""
        drained, self._pending = self._pending, {}
        return drained

    def restore(self, drained: Mapping[str, TaskDurations]) -> None:
        for task, entry in drained.items():
            self._pending.setdefault(task, TaskDurations()).add(entry)

    def __bool__(self) -> bool:
        return bool(self._pending)


def cumulative(counts: Mapping[float, int], total: int) -> list[tuple[str, int]]:
    """Per-bucket counts (any bounds) to Prometheus's cumulative ``(le, count)`` pairs over
    DURATION_BUCKETS, ending with ``+Inf`` = ``total``."""
    pairs: list[tuple[str, int]] = []
    for upper in DURATION_BUCKETS:
        pairs.append((bucket_label(upper), sum(n for b, n in counts.items() if b <= upper)))
    pairs.append(("+Inf", total))
    return pairs
