"""callback_url webhooks: signed POSTs of a job's final representation to a real receiver,
retried as a job of their own, every attempt in the job's audit trail, SSRF rules applied."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobrunner.callbacks import WEBHOOK_TASK, Callbacks
from jobrunner.domain.models import AuditEntry, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.domain.views import job_view
from jobrunner.domain.webhooks import verify_signature
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.jobs import Transition
from jobrunner.tasks.catalog import build_registry
from jobrunner.tasks.demo import DEMO_TASKS
from jobrunner.tasks.maintenance import expire_jobs
from jobrunner.tasks.upkeep import Upkeep
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings
from tests.polling import eventually
from tests.webhook_receiver import Receiver, receiving

SECRET = "default-secret"
WEBHOOK_EVENTS = ("webhook_delivered", "webhook_failed")


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return make_settings(
        redis_url,
        key_prefix,
        tmp_path,
        connector_allow_private=True,  # the receiver listens on 127.0.0.1
        webhook_secret=SECRET,
        webhook_retry_base_seconds=0.05,
        webhook_retry_cap_seconds=0.1,
        webhook_max_tries=3,
        webhook_timeout_seconds=2.0,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


async def webhook_audit(runner: JobRunner, job_id: str, count: int = 1) -> list[AuditEntry]:
    """The job's webhook audit entries, once ``count`` of them (or a final one) are there."""

    async def read() -> list[AuditEntry]:
        return [a for a in await runner.audit(job_id) if a.event in WEBHOOK_EVENTS]

    return await eventually(read, lambda entries: len(entries) >= count, timeout=10)


async def delivered_by_a_worker(runner: JobRunner, receiver: Receiver, job_id: str) -> Any:
    """Run a worker until the job's webhook was delivered; the one body the receiver got."""
    async with WorkerRunner(runner.settings, runner.registry, redis=runner.redis):
        (entry,) = await webhook_audit(runner, job_id)
    assert entry.event == "webhook_delivered"
    (got,) = receiver.got
    return json.loads(got.body)


async def delivery_job(runner: JobRunner, tenant: str = "default") -> JobRecord:
    page = await runner.list(tenant, task=WEBHOOK_TASK)
    assert page.total == 1
    return page.items[0]


async def test_a_finished_job_is_posted_signed_with_its_final_representation(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    plain = await runner.enqueue("demo.echo", {"no": "callback"})
    job = await runner.enqueue("demo.echo", {"x": 1}, callback_url=receiver.url("/hook?a=1"))
    await runner.wait(plain.id, timeout=5)
    await runner.wait(job.id, timeout=5)
    (entry,) = await webhook_audit(runner, job.id)
    assert (entry.event, entry.http_status, entry.attempt) == ("webhook_delivered", 200, 1)

    (got,) = receiver.got
    assert (got.method, got.path) == ("POST", "/hook?a=1")
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == job_view(await runner.get(job.id)).model_dump(mode="json")
    assert json.loads(got.body)["status"] == "succeeded"
    header = got.headers["x-jobrunner-signature"]
    assert verify_signature(SECRET, got.body, header, now=time.time(), tolerance_seconds=30)
    assert not verify_signature("another", got.body, header, now=time.time())
    assert got.headers["x-jobrunner-event"] == "job.succeeded"
    delivery = await delivery_job(runner)  # only the job with a callback_url got one
    assert got.headers["x-jobrunner-delivery"] == delivery.id
    assert got.headers["x-correlation-id"] == job.correlation_id
    assert delivery.status is JobStatus.SUCCEEDED
    assert delivery.plan == job.plan


async def test_a_refusing_receiver_gets_retries_each_in_the_audit_trail(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    receiver.statuses = [503, 500]
    job = await runner.enqueue("demo.flaky", {"fail_times": -1}, callback_url=receiver.url())
    entries = await webhook_audit(runner, job.id, count=3)
    assert [(e.event, e.http_status, e.attempt) for e in entries] == [
        ("webhook_failed", 503, 1),
        ("webhook_failed", 500, 2),
        ("webhook_delivered", 200, 3),
    ]
    assert entries[0].error is not None
    assert entries[0].error.code == "webhook_http_error"
    assert len({d.headers["x-jobrunner-delivery"] for d in receiver.got}) == 1
    for got in receiver.got:  # each attempt signed afresh, the same body every time
        assert got.body == receiver.got[0].body
        assert verify_signature(SECRET, got.body, got.headers["x-jobrunner-signature"],
                                now=time.time(), tolerance_seconds=30)  # fmt: skip
    body = json.loads(receiver.got[-1].body)
    assert body["status"] == "failed"
    assert body["error"]["code"] == "flaky_permanent"


async def test_tries_are_bounded_and_a_client_error_is_not_retried(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    receiver.statuses = [503] * 10
    down = await runner.enqueue("demo.echo", {}, callback_url=receiver.url("/down"))
    entries = await webhook_audit(runner, down.id, count=3)
    delivery = await eventually(lambda: delivery_job(runner), lambda d: d.is_terminal, timeout=10)
    assert delivery.status is JobStatus.FAILED
    assert [e.http_status for e in entries] == [503, 503, 503]  # webhook_max_tries=3
    assert len(receiver.got) == 3

    receiver.statuses = [410]
    gone = await runner.enqueue("demo.echo", {}, tenant="t2", callback_url=receiver.url("/gone"))
    (entry,) = await webhook_audit(runner, gone.id)
    assert (entry.event, entry.http_status) == ("webhook_failed", 410)
    delivery = await eventually(
        lambda: delivery_job(runner, "t2"), lambda d: d.is_terminal, timeout=10
    )
    assert delivery.status is JobStatus.FAILED
    assert delivery.attempts == 1
    assert [d.path for d in receiver.got].count("/gone") == 1


async def test_a_private_target_is_refused_unless_allowed(
    runner: JobRunner, receiver: Receiver
) -> None:
    strict = runner.settings.model_copy(update={"connector_allow_private": False})
    registry = build_registry(strict)
    async with WorkerRunner(strict, registry, redis=runner.redis):
        job = await runner.enqueue("demo.echo", {}, callback_url=receiver.url())
        (entry,) = await webhook_audit(runner, job.id)
        delivery = await eventually(
            lambda: delivery_job(runner), lambda d: d.is_terminal, timeout=10
        )
    assert entry.event == "webhook_failed"
    assert entry.http_status is None
    assert entry.error is not None
    assert entry.error.code == "url_target_not_allowed"
    assert delivery.status is JobStatus.FAILED
    assert delivery.attempts == 1  # a refused target is not worth another try
    assert receiver.got == []


async def test_cancelled_jobs_are_reported_waiting_or_running(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    waiting = await runner.enqueue("demo.echo", {}, defer_seconds=600, callback_url=receiver.url())
    await runner.cancel(waiting.id)
    running = await runner.enqueue(
        "demo.sleep", {"seconds": 30, "steps": 300}, tenant="t2", callback_url=receiver.url()
    )
    await eventually(lambda: runner.get(running.id), lambda r: r.status is JobStatus.RUNNING)
    await runner.cancel(running.id)
    await webhook_audit(runner, waiting.id)
    await webhook_audit(runner, running.id)
    bodies = {body["id"]: body for body in (json.loads(d.body) for d in receiver.got)}
    assert bodies[waiting.id]["status"] == "cancelled"
    assert bodies[waiting.id]["started_at"] is None
    assert bodies[running.id]["status"] == "cancelled"
    assert bodies[running.id]["started_at"] is not None


async def test_expired_jobs_are_reported_by_the_expiry_cron(
    runner: JobRunner, receiver: Receiver
) -> None:
    job = await runner.enqueue("demo.echo", {}, ttl_seconds=0.05, callback_url=receiver.url())
    idle = WorkerRunner(runner.settings, runner.registry, redis=runner.redis)  # not started
    slots = itertools.count(1)  # each call its own cron slot (a slot runs once)

    def tick() -> Awaitable[object]:
        return expire_jobs({"services": idle.services, "job_id": f"expire:{next(slots)}"})

    expired = await eventually(tick, lambda report: report == {"expired": 1})
    assert expired == {"expired": 1}
    assert (await delivered_by_a_worker(runner, receiver, job.id))["status"] == "expired"


async def test_a_delivery_reports_only_a_job_of_its_own_tenant(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="alice", callback_url=receiver.url())
    await webhook_audit(runner, job.id)
    forged = await runner.enqueue(WEBHOOK_TASK, {"job_id": job.id}, tenant="mallory")
    final = await runner.wait(forged.id, timeout=10)
    assert final.status is JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "webhook_job_not_found"
    assert len(receiver.got) == 1


async def test_without_any_secret_callbacks_go_unsigned(
    redis_url: str, key_prefix: str, tmp_path: Path, receiver: Receiver
) -> None:
    settings = make_settings(redis_url, key_prefix, tmp_path, connector_allow_private=True)
    registry: Registry = build_registry(settings)
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis),
    ):
        job = await runner.enqueue("demo.echo", {}, callback_url=receiver.url())
        (entry,) = await webhook_audit(runner, job.id)
    assert entry.event == "webhook_delivered"
    (got,) = receiver.got
    assert "x-jobrunner-signature" not in got.headers


async def test_without_the_delivery_task_a_callback_is_logged_not_an_error(
    settings: Settings, receiver: Receiver
) -> None:
    registry = Registry(DEMO_TASKS)  # an application that lists its tasks without the webhook one
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis),
    ):
        with capture_logs() as logs:
            job = await runner.enqueue("demo.echo", {}, callback_url=receiver.url())
            final = await runner.wait(job.id, timeout=5)
    assert final.status is JobStatus.SUCCEEDED
    warning = next(e for e in logs if e["event"].startswith("callback_url not delivered"))
    assert (warning["log_level"], warning["job_id"]) == ("warning", job.id)
    assert receiver.got == []


async def test_a_callback_lost_with_its_process_is_enqueued_by_reconcile(
    runner: JobRunner, receiver: Receiver
) -> None:
    """The script that ends a job puts it in the callbacks outbox; a process that dies before
    it enqueues the delivery (here: the store's write alone, no Callbacks step after it) leaves
    the entry, and the reconcile cron enqueues the delivery, once."""
    job = await runner.enqueue("demo.echo", {}, defer_seconds=600, callback_url=receiver.url())
    change = Transition(
        target=JobStatus.CANCELLED,
        fields={"finished_at": time.time() * 1000},
        audit=AuditEntry(at=datetime.now(tz=UTC), event="cancelled", status=JobStatus.CANCELLED),
    )
    assert await runner.store.transition(job.id, change, time.time() * 1000)
    outbox = runner.keys.callbacks_due
    assert await runner.redis.zrange(outbox, 0, -1) == [job.id.encode()]
    assert (await runner.metrics()).webhooks_pending == 1  # /metrics: jobrunner_webhooks_pending
    callbacks = Callbacks(runner.settings, runner.registry, runner.store)
    upkeep = Upkeep(runner.store, runner.blobs, runner.settings, callbacks)
    early = await upkeep.reconcile()  # within the grace: the ending process may still do it
    assert early["webhooks_resent"] == 0
    later = time.time() * 1000 + runner.settings.reconcile_grace_seconds * 1000 + 1
    assert (await upkeep.reconcile(later))["webhooks_resent"] == 1
    assert await runner.redis.zcard(outbox) == 0
    assert (await runner.metrics()).webhooks_pending == 0
    assert (await upkeep.reconcile(later))["webhooks_resent"] == 0
    delivery = await delivery_job(runner)
    assert delivery.params == {"job_id": job.id}
    assert (await delivered_by_a_worker(runner, receiver, job.id))["status"] == "cancelled"


async def test_an_ending_that_enqueues_its_delivery_leaves_no_outbox_entry(
    runner: JobRunner, worker: WorkerRunner, receiver: Receiver
) -> None:
    job = await runner.enqueue("demo.echo", {}, callback_url=receiver.url())
    await runner.wait(job.id, timeout=5)
    await webhook_audit(runner, job.id)
    assert await runner.redis.zcard(runner.keys.callbacks_due) == 0
