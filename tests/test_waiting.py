"""Why a waiting job waits (domain/waiting.py): pure, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobrunner.domain.models import JobRecord
from jobrunner.domain.shares import DEFAULT_SHARES, PLANS
from jobrunner.domain.status import JobStatus
from jobrunner.domain.waiting import Capacity, capacity_for, explain_wait, share_percent

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
IDLE = Capacity(workers=1, guaranteed=3, total=20, running=0)


def job(**changes: Any) -> JobRecord:
    values: dict[str, Any] = {
        "id": "a" * 32,
        "task": "demo.echo",
        "params": {},
        "status": JobStatus.QUEUED,
        "queue": "jobrunner:queue:pro",
        "plan": "pro",
        "tenant": "acme",
        "timeout_seconds": 30,
        "created_at": NOW - timedelta(minutes=5),
        "scheduled_at": NOW - timedelta(minutes=5),
    }
    return JobRecord(**{**values, **changes})


def test_a_retry_waits_out_its_backoff() -> None:
    record = job(status=JobStatus.RETRYING, attempts=2, next_attempt_at=NOW + timedelta(seconds=30))
    wait = explain_wait(record, ahead=0, capacity=IDLE, now=NOW, per_minute=None)
    assert (
        wait.reason == "backoff"
        and "Attempt 2 failed" in wait.summary
        and "in 30 s" in wait.summary
    )


def test_a_deferred_job_waits_for_its_time() -> None:
    record = job(scheduled_at=NOW + timedelta(hours=1))
    wait = explain_wait(record, ahead=0, capacity=IDLE, now=NOW, per_minute=None)
    assert wait.reason == "deferred" and "2025-01-31 13:00:00 UTC" in wait.summary


def test_without_a_worker_on_its_queue_nothing_runs() -> None:
    none = Capacity(workers=0, guaranteed=0, total=0, running=0)
    wait = explain_wait(job(), ahead=4, capacity=none, now=NOW, per_minute=None)
    assert wait.reason == "no_worker" and wait.ahead == 4 and "--queues pro" in wait.summary


def test_a_job_out_of_its_queue_is_being_taken() -> None:
    wait = explain_wait(job(), ahead=None, capacity=IDLE, now=NOW, per_minute=None)
    assert wait.reason == "starting"


def test_next_in_line_with_a_free_slot() -> None:
    busy = Capacity(workers=1, guaranteed=3, total=20, running=2)
    wait = explain_wait(job(), ahead=0, capacity=busy, now=NOW, per_minute=None)
    assert wait.reason == "next" and wait.ahead == 0


@pytest.mark.parametrize(("per_minute", "eta"), [(30.0, 20.0), (None, None)])
def test_behind_others_with_an_estimate_from_recent_throughput(
    per_minute: float | None, eta: float | None
) -> None:
    full = Capacity(workers=2, guaranteed=6, total=40, running=40)
    # the running jobs are not among the entries ahead (a claim moves them past the due ones)
    wait = explain_wait(job(), ahead=10, capacity=full, now=NOW, per_minute=per_minute)
    assert wait.reason == "behind" and wait.ahead == 10 and wait.eta_seconds == eta
    assert "10 job(s) wait before it and 40 of its queue run now" in wait.summary


def test_capacity_sums_the_workers_that_consume_the_plan() -> None:
    workers = [
        {"queues": list(PLANS), "concurrency": 20, "running_by_queue": {"pro": 2}},
        {"queues": ["pro", "free"], "concurrency": 10, "running_by_queue": {"pro": 1}},
        {"queues": ["enterprise"], "concurrency": 50, "running_by_queue": {}},
    ]
    found = capacity_for("pro", workers, DEFAULT_SHARES)
    # 20 split 50/25/15/10 gives pro 3; 10 split 15/10 gives pro 6
    assert found == Capacity(workers=2, guaranteed=9, total=30, running=3)
    assert capacity_for("business", workers, DEFAULT_SHARES).workers == 1


def test_a_plans_share_of_a_worker() -> None:
    assert share_percent("enterprise", DEFAULT_SHARES, PLANS) == 50
    assert share_percent("free", DEFAULT_SHARES, PLANS) == 10
    assert share_percent("x", {}, ["x", "y"]) == 50
