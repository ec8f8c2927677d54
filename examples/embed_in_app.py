"""An existing asyncio application that hands slow work to jobrunner, all in one event loop.

The "service" below receives three catalog uploads, enqueues a typed job for each (with an
idempotency key, so a retried request does not create a second job), runs a worker inside its
own event loop (no threads, no second loop), follows progress and prints the results.

    JOBRUNNER_REDIS_URL=redis://127.0.0.1:6379/0 python examples/embed_in_app.py
    python examples/embed_in_app.py        # no URL: an embedded redis-server in a temp dir
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from jobrunner import JobContext, JobRunner, JobStatus, Registry, Settings, task
from jobrunner.logs import configure_logging
from jobrunner.worker.runner import WorkerRunner


class CountSkus(BaseModel):
    seller: str
    rows: list[str] = Field(min_length=1)


@task("catalog.count_skus", timeout=30)
async def count_skus(ctx: JobContext, params: CountSkus) -> dict[str, int | str]:
    """Count distinct SKUs in an uploaded catalog, reporting progress as it goes."""
    seen: set[str] = set()
    for done, row in enumerate(params.rows, 1):
        seen.add(row.split(",")[0])
        await ctx.progress(100 * done / len(params.rows), f"row {done}")
        await asyncio.sleep(0.01)  # stands in for real async I/O
    ctx.log.info("catalog counted", seller=params.seller, skus=len(seen))
    return {"seller": params.seller, "distinct_skus": len(seen)}


UPLOADS = {
    "acme": ["A1,shoe", "A2,hat", "A1,shoe"],
    "globex": ["G1,lamp"],
    "initech": ["I1,stapler", "I2,printer", "I3,fax", "I4,desk"],
}


async def handle_upload(runner: JobRunner, seller: str, rows: list[str]) -> str:
    """What a request handler would do: enqueue and answer at once with the job id."""
    job = await runner.enqueue(
        count_skus,
        CountSkus(seller=seller, rows=rows),
        tenant=seller,
        plan="pro",
        idempotency_key=f"upload-{seller}-1",
    )
    return job.id


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="jobrunner-example-") as tmp:
        # Settings also reads JOBRUNNER_* (REDIS_URL, KEY_PREFIX, ...) from the environment.
        settings = Settings(redis_url=os.environ.get("JOBRUNNER_REDIS_URL"), data_dir=Path(tmp))
        configure_logging(json=settings.log_json, level=settings.log_level)  # logs to stderr
        await serve(settings)
    print("all uploads processed")


async def serve(settings: Settings) -> None:
    """The application's lifetime: a JobRunner and a worker, both in this event loop."""
    registry = Registry([count_skus])
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis, concurrency=4),
    ):
        ids = [await handle_upload(runner, seller, rows) for seller, rows in UPLOADS.items()]
        again = await handle_upload(runner, "acme", UPLOADS["acme"])  # a retried request
        assert again == ids[0], "the idempotency key returns the same job"
        for job_id in ids:
            record = await runner.wait(job_id, timeout=30)
            assert record.status is JobStatus.SUCCEEDED, record.error
            print(f"{record.tenant}: {await runner.result(job_id)}")


if __name__ == "__main__":
    asyncio.run(main())
