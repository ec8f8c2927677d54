"""Retries with exponential backoff and full jitter; permanent errors; timeouts as attempts."""

from __future__ import annotations

from jobrunner.domain.retry import backoff_ceiling
from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner


async def test_transient_failures_retry_then_succeed(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.flaky", {"fail_times": 2})
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 3
    assert await runner.result(job.id) == {"attempt": 3}
    audit = await runner.audit(job.id)
    failures = [a for a in audit if a.event == "attempt_failed"]
    assert [a.attempt for a in failures] == [1, 2]
    assert all(a.error and a.error.code == "flaky_transient" for a in failures)
    assert [a.status for a in audit if a.status] == [
        JobStatus.QUEUED,
        JobStatus.RUNNING,
        JobStatus.RETRYING,
        JobStatus.RUNNING,
        JobStatus.RETRYING,
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    ]


async def test_retry_delays_stay_within_the_backoff_bounds(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.flaky", {"fail_times": 2}, max_tries=3)
    await runner.wait(job.id, timeout=10)
    audit = await runner.audit(job.id)
    policy = runner.settings.retry_policy
    failed_at = [a.at for a in audit if a.event == "attempt_failed"]
    started_at = [a.at for a in audit if a.event == "started"]
    for attempt, (failed, restarted) in enumerate(zip(failed_at, started_at[1:], strict=True), 1):
        gap = (restarted - failed).total_seconds()
        # never before the drawn delay's lower bound (0) and never long after its ceiling
        assert 0 <= gap <= backoff_ceiling(attempt, policy) + 0.25, (attempt, gap)


async def test_permanent_error_fails_at_once(runner: JobRunner, worker: WorkerRunner) -> None:
    job = await runner.enqueue("demo.flaky", {"fail_times": -1})
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.code == "flaky_permanent"
    assert not done.error.retryable
    assert await runner.result(job.id) is None


async def test_tries_run_out(runner: JobRunner, worker: WorkerRunner) -> None:
    job = await runner.enqueue("demo.flaky", {"fail_times": 5}, max_tries=2)
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 2
    assert done.error is not None
    assert done.error.code == "flaky_transient"
    errors = [a.error.attempt for a in await runner.audit(job.id) if a.error]
    assert errors == [1, 2]


async def test_timeouts_count_as_attempts(runner: JobRunner, worker: WorkerRunner) -> None:
    job = await runner.enqueue(
        "demo.sleep", {"seconds": 5, "steps": 5}, timeout_seconds=0.2, max_tries=2
    )
    done = await runner.wait(job.id, timeout=10)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 2
    assert done.error is not None
    assert done.error.code == "timeout"
