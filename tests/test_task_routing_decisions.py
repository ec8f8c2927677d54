"""The pure decisions of task routing (domain/task_routing.py): who has a task, and what a
worker without it does with a job (time is passed in as bounce counts, no clock)."""

from __future__ import annotations

from typing import Any

from jobrunner.domain.task_routing import (
    BOUNCE_CAP_SECONDS,
    Bounce,
    Coverage,
    Refuse,
    bounce_delay,
    coverage,
    decide_missing_task,
    holders,
)

LIVE: list[dict[str, Any]] = [
    {"id": "a", "queues": ["pro", "free"], "tasks": ["demo.echo"]},
    {"id": "b", "queues": ["pro"], "tasks": ["demo.echo", "x.only_b"]},
    {"id": "old", "queues": ["business"]},  # too old to advertise: taken to have every task
]


def decide(worker_id: str, task: str, plan: str, bounces: int = 0) -> Bounce | Refuse:
    return decide_missing_task(
        task=task, plan=plan, worker_id=worker_id, host="h1", live=LIVE, bounces=bounces,
        limit=3, base_delay=0.5,
    )  # fmt: skip


def test_holders_and_coverage() -> None:
    assert holders(LIVE, "pro", "x.only_b") == ["b"]
    assert holders(LIVE, "pro", "x.only_b", exclude="b") == []
    assert holders(LIVE, "business", "anything") == ["old"]
    assert coverage(LIVE, "pro", "demo.echo") is Coverage.SERVED
    assert coverage(LIVE, "free", "x.only_b") is Coverage.NO_TASK
    assert coverage(LIVE, "enterprise", "demo.echo") is Coverage.NO_WORKER


def test_a_worker_without_the_task_bounces_to_a_holder_until_the_limit() -> None:
    assert decide("a", "x.only_b", "pro") == Bounce(delay=0.5, holders=("b",))
    assert decide("a", "x.only_b", "pro", bounces=2) == Bounce(delay=2.0, holders=("b",))
    refused = decide("a", "x.only_b", "pro", bounces=3)
    assert isinstance(refused, Refuse)
    assert refused.message == (
        "worker a (host h1) has no task 'x.only_b'; the job went back to queue 'pro' "
        "3 times for b and was not taken"
    )


def test_a_worker_without_the_task_fails_the_job_when_no_other_has_it() -> None:
    assert decide("a", "x.only_b", "free") == Refuse(
        "worker a (host h1) has no task 'x.only_b', nor does any other live worker on queue 'free'"
    )
    assert isinstance(decide("b", "x.unknown", "pro"), Refuse)


def test_bounce_delays_double_up_to_a_cap() -> None:
    assert [bounce_delay(n, 0.25) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert bounce_delay(10_000, 0.25) == BOUNCE_CAP_SECONDS
