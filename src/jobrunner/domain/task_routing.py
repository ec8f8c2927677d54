"""Which live workers can run a task, and what a worker does with a job whose task it lacks.

Workers advertise their task names in the worker registry (the ``tasks`` field of an entry).
An entry without that field (a worker of an older version) is taken to have every task: the
advice at enqueue stays quiet about it, and a job may bounce to it (a bounded number of times).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Bounce",
    "Coverage",
    "Refuse",
    "bounce_delay",
    "coverage",
    "decide_missing_task",
    "has_task",
    "holders",
]

BOUNCE_CAP_SECONDS = 30.0

Entry = Mapping[str, Any]


class Coverage(StrEnum):
    """How the live workers cover a job's queue and task."""

    SERVED = "served"  # a live worker consumes the queue and has the task
    NO_WORKER = "no_worker"  # no live worker consumes the queue
    NO_TASK = "no_task"  # workers consume the queue, none of them has the task


def serves(entry: Entry, plan: str) -> bool:
    return plan in entry.get("queues", ())


def has_task(entry: Entry, task: str) -> bool:
    tasks = entry.get("tasks")
    return tasks is None or task in tasks


def holders(live: Sequence[Entry], plan: str, task: str, *, exclude: str = "") -> list[str]:
    """Ids of the live workers on ``plan``'s queue that have ``task`` (``exclude`` left out)."""
    return [
        str(w.get("id"))
        for w in live
        if w.get("id") != exclude and serves(w, plan) and has_task(w, task)
    ]


def coverage(live: Sequence[Entry], plan: str, task: str) -> Coverage:
    if not any(serves(w, plan) for w in live):
        return Coverage.NO_WORKER
    return Coverage.SERVED if holders(live, plan, task) else Coverage.NO_TASK


@dataclass(frozen=True)
class Bounce:
    """Put the job back on its queue for ``delay`` seconds; another worker has the task."""

    delay: float
    holders: tuple[str, ...]


@dataclass(frozen=True)
class Refuse:
    """Fail the job: no other live worker on its queue has the task, or it bounced enough."""

    message: str


def bounce_delay(bounces: int, base: float) -> float:
    """Seconds before a job bounced ``bounces`` times already is eligible again: ``base``,
    doubling, at most ``BOUNCE_CAP_SECONDS``. The bouncing worker and the holders all wake when
    the job is due and race for it, so a job lands on a holder within a few bounces."""
    return min(base * 2.0 ** min(bounces, 16), BOUNCE_CAP_SECONDS)


def decide_missing_task(
    *,
    task: str,
    plan: str,
    worker_id: str,
    host: str,
    live: Sequence[Entry],
    bounces: int,
    limit: int,
    base_delay: float,
) -> Bounce | Refuse:
    """What the worker ``worker_id`` (on ``host``), which lacks ``task``, does with a job of it
    pulled from ``plan``'s queue after ``bounces`` earlier bounces (at most ``limit``)."""
    others = holders(live, plan, task, exclude=worker_id)
    lacking = f"worker {worker_id} (host {host}) has no task {task!r}"
    if not others:
        return Refuse(f"{lacking}, nor does any other live worker on queue {plan!r}")
    if bounces >= limit:
        return Refuse(
            f"{lacking}; the job went back to queue {plan!r} {bounces} times for "
            f"{', '.join(others)} and was not taken"
        )
    return Bounce(delay=bounce_delay(bounces, base_delay), holders=tuple(others))
