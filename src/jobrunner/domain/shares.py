"""Plans, their queues and how a worker's concurrency is split between them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

PLANS: tuple[str, ...] = ("enterprise", "business", "pro", "free")
DEFAULT_SHARES: dict[str, float] = {"enterprise": 50, "business": 25, "pro": 15, "free": 10}


def split_concurrency(
    total: int, queues: Sequence[str], shares: Mapping[str, float]
) -> dict[str, int]:
    """Slots per queue, proportional to the shares of the queues consumed; each gets at least 1.

    Largest-remainder rounding keeps the sum equal to ``total`` when ``total >= len(queues)``;
    below that every queue still gets one slot.
    """
    if not queues:
        return {}
    weights = {q: max(float(shares.get(q, 1.0)), 0.0) for q in queues}
    weight_sum = sum(weights.values()) or float(len(queues))
    exact = {q: total * (weights[q] or 0.0) / weight_sum for q in queues}
    slots = {q: max(1, math.floor(v)) for q, v in exact.items()}
    while sum(slots.values()) > total and max(slots.values()) > 1:
        biggest = max(slots, key=lambda q: slots[q])  # the minimum of 1 each overshot: trim
        slots[biggest] -= 1
    leftover = total - sum(slots.values())
    by_remainder = sorted(queues, key=lambda q: exact[q] - math.floor(exact[q]), reverse=True)
    for q in by_remainder[: max(leftover, 0)]:
        slots[q] += 1
    return slots
