"""Why a waiting job has not started yet: pure arithmetic over what the dashboard read (its
place in its queue, the live workers' heartbeats, the plans' shares, recent throughput)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobrunner.domain.models import JobRecord
from jobrunner.domain.shares import split_concurrency
from jobrunner.domain.status import JobStatus

__all__ = ["Capacity", "Wait", "capacity_for", "explain_wait", "share_percent"]


@dataclass(frozen=True)
class Capacity:
    """The slots live workers give one plan's queue."""

    workers: int  # live workers consuming the queue
    guaranteed: int  # slots the plan's share guarantees on them
    total: int  # every slot of those workers: what the queue may borrow up to when others idle
    running: int  # jobs of this queue running now (as of the last heartbeats)


def capacity_for(
    plan: str, workers: Sequence[Mapping[str, Any]], shares: Mapping[str, float]
) -> Capacity:
    """Sum over the live workers that consume ``plan`` (their heartbeat entries)."""
    serving = [w for w in workers if plan in w.get("queues", ())]
    guaranteed = 0
    for w in serving:
        queues = [str(q) for q in w.get("queues", ())]
        guaranteed += split_concurrency(int(w.get("concurrency", 0)), queues, shares).get(plan, 0)
    return Capacity(
        workers=len(serving),
        guaranteed=guaranteed,
        total=sum(int(w.get("concurrency", 0)) for w in serving),
        running=sum(int(w.get("running_by_queue", {}).get(plan, 0)) for w in serving),
    )


def share_percent(plan: str, shares: Mapping[str, float], plans: Sequence[str]) -> float:
    """The plan's share of a worker that consumes every plan, in percent."""
    total = sum(max(float(shares.get(p, 1.0)), 0.0) for p in plans)
    return 100.0 * max(float(shares.get(plan, 1.0)), 0.0) / total if total else 0.0


@dataclass(frozen=True)
class Wait:
    """The explanation a job page shows."""

    reason: str  # backoff | deferred | starting | no_worker | next | behind
    summary: str
    ahead: int | None = None  # waiting jobs before it in its queue
    eta_seconds: float | None = None  # at the recent rate of its queue


def _when(at: datetime, now: datetime) -> str:
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')} UTC (in {max((at - now).total_seconds(), 0):.0f} s)"


def explain_wait(
    record: JobRecord,
    *,
    ahead: int | None,
    capacity: Capacity,
    now: datetime,
    per_minute: float | None,
) -> Wait:
    """``ahead``: entries before it in its arq queue (None: it is not in the queue).
    ``per_minute``: jobs its queue finished a minute lately (None: unknown)."""
    due = record.next_attempt_at if record.status is JobStatus.RETRYING else None
    if due is not None and due > now:
        return Wait(
            "backoff", f"Attempt {record.attempts} failed; the next is due {_when(due, now)}."
        )
    if record.scheduled_at > now:
        return Wait("deferred", f"Scheduled to run at {_when(record.scheduled_at, now)}.")
    if ahead is None:
        return Wait("starting", "Not in its queue any more: a worker is taking it right now.")
    waiting = ahead  # running jobs are not ahead: a claim moves them past the due entries
    if capacity.workers == 0:
        return Wait(
            "no_worker",
            f"No live worker consumes the {record.plan} queue: nothing runs until one starts "
            f"(jobrunner worker --queues {record.plan}).",
            waiting,
        )
    eta = waiting / per_minute * 60 if per_minute else None
    if waiting == 0 and capacity.running < capacity.total:
        return Wait("next", "Next in its queue: a free slot takes it within a poll.", 0, eta)
    return Wait(
        "behind",
        f"{waiting} job(s) wait before it and {capacity.running} of its queue run now, on "
        f"{capacity.guaranteed} slot(s) its plan is guaranteed ({capacity.total} when the other "
        "queues are idle).",
        waiting,
        eta,
    )
