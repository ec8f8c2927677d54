"""Task logs carry the job id, tenant and correlation id."""

from __future__ import annotations

from structlog.testing import capture_logs

from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner


async def test_task_logs_are_bound_to_the_job(runner: JobRunner, worker: WorkerRunner) -> None:
    with capture_logs() as logs:
        job = await runner.enqueue("demo.sleep", {"seconds": 0.01, "steps": 1}, tenant="acme",
                                   correlation_id="req-7")  # fmt: skip
        await runner.wait(job.id, timeout=5)
    mine = [entry for entry in logs if entry.get("job_id") == job.id]
    assert any(e["event"] == "demo.sleep finished or stopped" for e in mine)
    for entry in mine:
        assert entry["tenant"] == "acme"
        assert entry["correlation_id"] == "req-7"
