"""Every page and action over ASGI against the session's Redis: what each viewer sees, what
the operator does (cancel, retry, keys: CSRF-checked POSTs), and tenant scoping: a tenant's key
never shows another tenant's job, by list or by URL, nor its files."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from jobrunner.api.services import ApiServices
from jobrunner.domain.models import JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.embedded import free_port
from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import (
    Browser,
    MakeKey,
    csrf_of,
    dashboard_settings,
    post_form,
    serving,
    sign_in,
)

Job = JobRecord


def rows(html: str) -> list[str]:
    """Job ids in the jobs table, in order."""
    return re.findall(r'<tr data-job="([0-9a-f]{32})">', html)


async def until(check: Any, timeout: float = 10.0) -> None:
    """Poll an async predicate until it holds (or fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def two_tenants(runner: JobRunner) -> dict[str, list[Job]]:
    """Jobs of acme (pro and free) and globex, created oldest first."""
    jobs: dict[str, list[Job]] = {"acme": [], "globex": []}
    for i in range(3):
        jobs["acme"].append(await runner.enqueue("demo.echo", {"i": i}, tenant="acme", plan="pro"))
        jobs["globex"].append(await runner.enqueue("demo.echo", {"i": i}, tenant="globex"))
    jobs["acme"].append(await runner.enqueue("demo.sleep", {"seconds": 1}, tenant="acme"))
    return jobs


# -- the jobs table ---------------------------------------------------------------------------


async def test_the_operator_sees_every_tenant_newest_first(
    browser: Browser, two_tenants: dict[str, list[Job]]
) -> None:
    admin = await browser("admin")
    page = await admin.get("/dashboard/jobs")
    every = [j.id for jobs in two_tenants.values() for j in jobs]
    assert page.status_code == 200 and sorted(rows(page.text)) == sorted(every)
    assert rows(page.text)[0] == two_tenants["acme"][-1].id  # the newest
    assert "7 jobs" in page.text
    only = await admin.get("/dashboard/jobs?tenant=globex")
    assert rows(only.text) == [j.id for j in reversed(two_tenants["globex"])]


async def test_filters_combine_status_task_and_queue(
    browser: Browser, two_tenants: dict[str, list[Job]]
) -> None:
    admin = await browser("admin")
    acme = two_tenants["acme"]
    by_task = await admin.get("/dashboard/jobs?task=demo.sleep")
    assert rows(by_task.text) == [acme[-1].id]
    by_queue = await admin.get("/dashboard/jobs?queue=pro")
    assert rows(by_queue.text) == [j.id for j in reversed(acme[:3])]
    combined = await admin.get("/dashboard/jobs?tenant=acme&status=queued&task=demo.echo&queue=pro")
    assert rows(combined.text) == [j.id for j in reversed(acme[:3])]
    assert "matches among" in combined.text  # an intersection: walked, not counted
    none = await admin.get("/dashboard/jobs?tenant=globex&queue=pro")
    assert rows(none.text) == [] and "No job matches" in none.text
    empty = await admin.get("/dashboard/jobs?status=&task=&queue=&tenant=")
    assert len(rows(empty.text)) == 7


async def test_pages_step_through_the_index(browser: Browser, runner: JobRunner) -> None:
    made = [r.id for r in await runner.enqueue_many([{"task": "demo.echo", "tenant": "big"}] * 12)]
    admin = await browser("admin")
    seen: list[str] = []
    url = "/dashboard/jobs?tenant=big&limit=5"
    pages = 0
    while url:
        page = await admin.get(url.replace("&amp;", "&"))
        assert page.status_code == 200
        seen += rows(page.text)
        pages += 1
        older = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        url = older.group(1) if older else ""
    assert pages == 3 and sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    second = await admin.get("/dashboard/jobs?tenant=big&limit=5&cursor=0.5")
    assert "showing 6\u201310" in second.text and "\u2039 Newer" in second.text


@pytest.mark.parametrize(
    "query",
    ["status=nope", "limit=1000", "tenant=a%20b", "queue=gold", "cursor=zz", "cursor=7.0"],
)
async def test_bad_filters_are_a_422_page(browser: Browser, query: str) -> None:
    admin = await browser("admin")
    reply = await admin.get(f"/dashboard/jobs?{query}")
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("text/html")


async def test_a_tenant_sees_only_its_own_jobs_whatever_the_url_says(
    browser: Browser, make_key: MakeKey, two_tenants: dict[str, list[Job]]
) -> None:
    tenant = await browser(await make_key("acme", "pro"))
    mine = sorted(j.id for j in two_tenants["acme"])
    for query in ("", "?tenant=globex", "?tenant=", "?queue=free", "?task=demo.echo"):
        page = await tenant.get(f"/dashboard/jobs{query}")
        assert page.status_code == 200
        assert set(rows(page.text)) <= set(mine), query
        assert not {j.id for j in two_tenants["globex"]} & set(rows(page.text))
    assert sorted(rows((await tenant.get("/dashboard/jobs?tenant=globex")).text)) == mine
    assert 'name="tenant"' not in (await tenant.get("/dashboard/jobs")).text


# -- a job's page -----------------------------------------------------------------------------


async def test_another_tenants_job_is_not_found_by_url(
    browser: Browser, make_key: MakeKey, two_tenants: dict[str, list[Job]]
) -> None:
    tenant = await browser(await make_key("globex", "free"))
    theirs, nobodys = two_tenants["acme"][0].id, "0" * 32
    for tail in ("", "/stream"):
        reply = await tenant.get(f"/dashboard/jobs/{theirs}{tail}")
        missing = await tenant.get(f"/dashboard/jobs/{nobodys}{tail}")
        assert reply.status_code == missing.status_code == 404
        # exactly the page of a job that never was: nothing tells the two apart
        assert reply.text.replace(theirs, nobodys) == missing.text.replace(
            csrf_of(missing.text), csrf_of(reply.text)
        )
    own = await tenant.get(f"/dashboard/jobs/{two_tenants['globex'][0].id}")
    assert own.status_code == 200 and "demo.echo" in own.text
    assert "/cancel" not in own.text and "/retry" not in own.text  # read-only


async def test_a_tenant_cannot_act_even_with_a_valid_csrf_token(
    browser: Browser, make_key: MakeKey, runner: JobRunner, two_tenants: dict[str, list[Job]]
) -> None:
    tenant = await browser(await make_key("acme", "pro"))
    job = two_tenants["acme"][0]
    page = f"/dashboard/jobs/{job.id}"
    for action in ("cancel", "retry"):
        reply = await post_form(tenant, page, f"{page}/{action}")
        assert reply.status_code == 403
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    created = await post_form(
        tenant, "/dashboard/tenants", "/dashboard/tenants/keys", tenant="x", plan="pro"
    )
    assert created.status_code == 403


async def test_a_finished_job_shows_fields_audit_result_and_files(
    browser: Browser, runner: JobRunner, worker: WorkerRunner, api: ApiServices, make_key: MakeKey
) -> None:
    upload = await runner.blobs.put_bytes(b"a,b\n1,2\n", name="in.csv", scheme="upload")
    await api.blob_index.record(upload, tenant="acme", content_type="text/csv")
    job = await runner.enqueue(
        "demo.echo", {"input_uri": upload, "note": "<b>x</b>"}, tenant="acme"
    )
    await runner.wait(job.id, timeout=10)
    admin = await browser("admin")
    page = (await admin.get(f"/dashboard/jobs/{job.id}")).text
    assert 'class="status status-succeeded"' in page and "100%" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page  # params are escaped
    assert 'id="job-result"' in page and "enqueued" in page and "succeeded" in page
    link = f"/dashboard/files/{quote(upload, safe='')}"
    assert link in page and "data-done" in page
    download = await admin.get(link)
    assert download.status_code == 200 and download.content == b"a,b\n1,2\n"
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["content-security-policy"] == "sandbox"
    own = await browser(await make_key("acme", "pro"))
    assert (await own.get(link)).status_code == 200
    other = await browser(await make_key("globex", "pro"))
    assert (await other.get(link)).status_code == 404
    assert (await admin.get("/dashboard/files/not-a-ref")).status_code == 404


async def test_a_failed_job_shows_its_error_code_and_the_operator_retries_it(
    browser: Browser, runner: JobRunner, worker: WorkerRunner
) -> None:
    job = await runner.enqueue("demo.flaky", {"fail_times": -1}, tenant="acme", max_tries=1)
    await runner.wait(job.id, timeout=10)
    admin = await browser("admin")
    page = await admin.get(f"/dashboard/jobs/{job.id}")
    assert "flaky_permanent" in page.text and "PermanentError" in page.text
    assert f"/dashboard/jobs/{job.id}/retry" in page.text
    no_csrf = await admin.post(f"/dashboard/jobs/{job.id}/retry", data={})
    assert no_csrf.status_code == 403
    assert (await runner.list("acme")).total == 1  # nothing was retried
    reply = await post_form(admin, f"/dashboard/jobs/{job.id}", f"/dashboard/jobs/{job.id}/retry")
    assert reply.status_code == 303
    new_id = reply.headers["location"].split("/")[-1].split("?")[0]
    assert reply.headers["location"].endswith("?notice=retried")
    assert (await runner.get(new_id)).retry_of == job.id
    again = await admin.get(reply.headers["location"])
    assert "Retried" in again.text and f'href="/dashboard/jobs/{job.id}"' in again.text
    queued = await runner.enqueue("demo.echo", {}, tenant="acme", defer_seconds=60)
    refused = await post_form(
        admin, f"/dashboard/jobs/{queued.id}", f"/dashboard/jobs/{queued.id}/retry"
    )
    assert refused.headers["location"].endswith("?notice=not-retryable")


async def test_the_operator_cancels_a_waiting_job(browser: Browser, runner: JobRunner) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="acme", defer_seconds=60)
    admin = await browser("admin")
    page = f"/dashboard/jobs/{job.id}"
    assert (await admin.post(f"{page}/cancel", data={"csrf_token": "forged"})).status_code == 403
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    reply = await post_form(admin, page, f"{page}/cancel")
    assert reply.status_code == 303 and reply.headers["location"] == f"{page}?notice=cancelled"
    assert (await runner.get(job.id)).status is JobStatus.CANCELLED
    shown = await admin.get(reply.headers["location"])
    assert "Cancelled: it will not run." in shown.text and f"{page}/cancel" not in shown.text
    twice = await admin.post(f"{page}/cancel", data={"csrf_token": csrf_of(shown.text)})
    assert twice.headers["location"] == f"{page}?notice=not-cancellable"


# -- why a job waits --------------------------------------------------------------------------


async def test_why_it_waits_without_a_worker_and_when_deferred(
    browser: Browser, runner: JobRunner
) -> None:
    admin = await browser("admin")
    first = await runner.enqueue("demo.echo", {}, tenant="acme", plan="pro")
    second = await runner.enqueue("demo.echo", {}, tenant="acme", plan="pro")
    page = (await admin.get(f"/dashboard/jobs/{second.id}")).text
    assert "Why it waits" in page and "No live worker consumes the pro queue" in page
    assert "2 (1 waiting before it)" in page and "pro: 15% of each worker" in page
    assert first.id
    later = await runner.enqueue("demo.echo", {}, tenant="acme", defer_seconds=600)
    page = (await admin.get(f"/dashboard/jobs/{later.id}")).text
    assert "Scheduled to run at" in page


async def test_why_it_waits_behind_a_busy_worker(
    browser: Browser, runner: JobRunner, settings: Any, registry: Any
) -> None:
    """One slot, taken by a long job: the next job waits behind it; a third one waits behind
    one job and the running one."""
    busy = WorkerRunner(settings, registry, redis=runner.redis, queues=["pro"], concurrency=1)
    await busy.start()
    try:
        running = await runner.enqueue("demo.sleep", {"seconds": 30, "steps": 30}, plan="pro")
        await until(lambda: _status_is(runner, running.id, JobStatus.RUNNING))
        waiting = await runner.enqueue("demo.echo", {}, plan="pro")
        third = await runner.enqueue("demo.echo", {}, plan="pro")
        await until(lambda: _heartbeat_shows_running(busy))
        admin = await browser("admin")
        page = (await admin.get(f"/dashboard/jobs/{third.id}")).text
        assert "1 job(s) wait before it and 1 of its queue run now" in page, page
        assert "1 running on 1 guaranteed slot(s), 1 in all, 1 worker(s)" in page
        assert waiting.id
        await runner.cancel(running.id)
    finally:
        await busy.stop(grace=0)


async def _status_is(runner: JobRunner, job_id: str, status: JobStatus) -> bool:
    return (await runner.get(job_id)).status is status


async def _heartbeat_shows_running(worker: WorkerRunner) -> bool:
    live = await worker_entries(worker)
    return any(w.get("jobs_running") == 1 for w in live)


async def worker_entries(worker: WorkerRunner) -> list[dict[str, Any]]:
    from jobrunner.store.workers import WorkerRegistry

    return await WorkerRegistry(worker.redis, worker.keys).live()


# -- overview, workers, tenants ---------------------------------------------------------------


async def test_the_overview_counts_queues_failures_and_run_times(
    browser: Browser, runner: JobRunner, worker: WorkerRunner
) -> None:
    done = [await runner.enqueue("demo.echo", {}, tenant="acme", plan="pro") for _ in range(3)]
    failed = await runner.enqueue("demo.flaky", {"fail_times": -1}, plan="business", max_tries=1)
    for job in [*done, failed]:
        await runner.wait(job.id, timeout=10)
    await runner.enqueue("demo.echo", {}, plan="free", defer_seconds=600)
    admin = await browser("admin")

    async def flushed() -> bool:  # the worker's heartbeat adds what it saw to Redis
        page = (await admin.get("/dashboard")).text
        return bool(re.search(r'data-col="failed">1<', page))

    await until(flushed)
    page = (await admin.get("/dashboard")).text
    business = page[page.index('data-queue="business"') :]
    assert re.search(r'data-col="failed">1<', business)
    pro = page[page.index('data-queue="pro"') :]
    assert re.search(r'data-col="finished">3<', pro)
    free = page[page.index('data-queue="free"') :]
    assert re.search(r'data-col="deferred">1<', free)
    assert "<svg" in page and 'class="bar"' in page and "run time p50" in page
    assert worker.worker_id in page and "Live workers" in page
    assert re.search(r'data-status="succeeded">3<', page)


async def test_a_tenant_overview_counts_only_its_jobs_and_hides_workers(
    browser: Browser, make_key: MakeKey, two_tenants: dict[str, list[Job]], worker: WorkerRunner
) -> None:
    tenant = await browser(await make_key("globex", "free"))
    page = (await tenant.get("/dashboard")).text
    assert "Your jobs" in page and "Live workers" not in page and worker.worker_id not in page
    counts = [int(n) for n in re.findall(r'data-status="[a-z]+">(\d+)<', page)]
    assert sum(counts) == len(two_tenants["globex"])


async def test_the_workers_page_is_the_operators(
    browser: Browser, worker: WorkerRunner, make_key: MakeKey
) -> None:
    admin = await browser("admin")
    page = await admin.get("/dashboard/workers")
    assert page.status_code == 200 and worker.worker_id in page.text
    assert str(worker.concurrency) in page.text and "enterprise, business, pro, free" in page.text
    tenant = await browser(await make_key())
    assert (await tenant.get("/dashboard/workers")).status_code == 403
    assert (await tenant.get("/dashboard/overview/stream?panel=workers")).status_code == 403


async def test_keys_are_created_once_shown_and_revoked(
    browser: Browser, api: ApiServices, runner: JobRunner
) -> None:
    admin = await browser("admin")
    created = await post_form(
        admin,
        "/dashboard/tenants",
        "/dashboard/tenants/keys",
        tenant="initech",
        plan="business",
        monthly_quota="500",
        rate_limit_per_s="",
    )
    assert created.status_code == 201 and "Copy it now" in created.text
    key_text = re.search(r'id="created-key" class="key" readonly value="([^"]+)"', created.text)
    assert key_text is not None
    (key,) = await api.api_keys.list("initech")
    assert key.monthly_quota == 500 and key.plan == "business"
    listed = (await admin.get("/dashboard/tenants")).text
    assert key_text.group(1) not in listed and key.key_id in listed and "0 of 500" in listed
    reader = await browser(key_text.group(1))  # the new key signs in, read-only
    assert "tenant initech" in (await reader.get("/dashboard")).text
    bad = await post_form(
        admin, "/dashboard/tenants", "/dashboard/tenants/keys", tenant="x y", plan="pro"
    )
    assert bad.status_code == 422 and "tenant" in bad.text
    unknown = await post_form(
        admin, "/dashboard/tenants", "/dashboard/tenants/keys", tenant="x", plan="gold"
    )
    assert unknown.status_code == 422 and "unknown plan" in unknown.text
    revoked = await post_form(
        admin, "/dashboard/tenants", f"/dashboard/tenants/keys/{key.key_id}/revoke"
    )
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("notice=revoked")
    assert await api.api_keys.list("initech") == []
    assert (await reader.get("/dashboard")).status_code == 303  # its sessions end with it


async def test_a_tenant_sees_its_usage_and_limits_but_no_other_keys(
    browser: Browser, api: ApiServices, runner: JobRunner, make_key: MakeKey
) -> None:
    await make_key("globex", "free")
    own, text = await api.api_keys.create("acme", "pro", monthly_quota=50, rate_limit_per_s=2)
    other, _ = await api.api_keys.create("acme", "free")
    tenant = await browser(text)
    page = (await tenant.get("/dashboard/tenants")).text
    assert "Usage" in page and own.key_id in page and "of 50" in page and "2 req/s" in page
    assert other.key_id not in page and "globex" not in page
    assert "Create an API key" not in page and "/revoke" not in page


async def test_unknown_dashboard_pages_are_html_404s(browser: Browser) -> None:
    admin = await browser("admin")
    reply = await admin.get("/dashboard/nowhere")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/html")
    assert (await admin.get("/dashboard/")).headers["location"] == "/dashboard"


async def test_pages_carry_a_strict_policy_and_load_only_local_assets(browser: Browser) -> None:
    admin = await browser("admin")
    for path in ("/dashboard", "/dashboard/jobs", "/dashboard/tenants", "/dashboard/login"):
        reply = await admin.get(path)
        csp = reply.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert reply.headers["cache-control"] == "no-store"
        assert reply.headers["x-frame-options"] == "DENY"
        assert not re.search(r'(src|href)="(https?:)?//', reply.text), path
    for asset in ("dashboard.css", "dashboard.js", "favicon.svg"):
        assert (await admin.get(f"/dashboard/static/{asset}")).status_code == 200
    for asset in ("dashboard.css", "dashboard.js"):
        text = (await admin.get(f"/dashboard/static/{asset}")).text
        assert "http://" not in text and "https://" not in text and "@import" not in text


async def test_redis_outage_is_a_503_page(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    """Redis stops answering (the app's pool is pointed at a closed port): a page says so
    within the short deadline instead of hanging, and recovers when Redis is back."""
    settings = dashboard_settings(redis_url, key_prefix, tmp_path, redis_timeout_seconds=0.3)
    async with serving(settings) as client:
        assert (await sign_in(client, ADMIN_TOKEN)).status_code == 303
        pool = client._transport.app.state.services.runner.redis.connection_pool  # type: ignore[attr-defined]
        port = pool.connection_kwargs["port"]
        await pool.disconnect()
        pool.reset()  # new connections, to the new port
        pool.connection_kwargs["port"] = free_port()
        try:
            started = time.monotonic()
            reply = await client.get("/dashboard/jobs")
            assert reply.status_code == 503 and "Redis is unavailable" in reply.text
            assert time.monotonic() - started < 5
        finally:
            pool.connection_kwargs["port"] = port
            await pool.disconnect()
            pool.reset()
        assert (await client.get("/dashboard/jobs")).status_code == 200


async def test_a_pipelines_output_files_are_linked_for_their_tenant_only(
    browser: Browser, runner: JobRunner, worker: WorkerRunner, api: ApiServices, make_key: MakeKey
) -> None:
    csv = b"sku,title,price\nA1,Red shirt,10.50\nA2,,abc\n"
    upload = await runner.blobs.put_bytes(csv, name="catalog.csv", scheme="upload")
    await api.blob_index.record(upload, tenant="acme", content_type="text/csv")
    job = await runner.enqueue(
        "validate_csv", {"input_uri": upload, "marketplace": "default"}, tenant="acme"
    )
    done = await runner.wait(job.id, timeout=60)
    assert done.status is JobStatus.SUCCEEDED, done.error
    report = (await runner.result(job.id))["report_ref"]
    tenant = await browser(await make_key("acme", "pro"))
    page = (await tenant.get(f"/dashboard/jobs/{job.id}")).text
    link = f"/dashboard/files/{quote(report, safe='')}"
    assert link in page and "result.report_ref" in page and "params.input_uri" in page
    got = await tenant.get(link)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert b"3,price,type_decimal" in got.content
    other = await browser(await make_key("globex", "pro"))
    assert (await other.get(link)).status_code == 404


async def _calls(runner: JobRunner) -> dict[str, int]:
    info = await runner.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


async def test_no_page_reads_more_than_its_page_of_records(
    browser: Browser, runner: JobRunner
) -> None:
    """Redis's own command counts: a table page loads exactly its 10 records of 400 jobs; the
    overview loads none (60 per-minute hashes are its only HGETALLs here, with no worker)."""
    await runner.enqueue_many(
        [{"task": "demo.echo", "tenant": f"t{i % 7}", "plan": "pro"} for i in range(400)]
    )
    admin = await browser("admin")
    for url, expected in (
        ("/dashboard/jobs?limit=10", 10),
        ("/dashboard/jobs?limit=10&status=queued&queue=pro&tenant=t3", 10),
        ("/dashboard/jobs?limit=10&cursor=0.350", 10),
        ("/dashboard", 60),
    ):
        before = await _calls(runner)
        assert (await admin.get(url)).status_code == 200
        after = await _calls(runner)
        loaded = after.get("hgetall", 0) - before.get("hgetall", 0)
        assert loaded == expected, (url, loaded)


async def test_every_action_refuses_a_post_without_the_sessions_token(
    browser: Browser, runner: JobRunner, api: ApiServices
) -> None:
    job = await runner.enqueue("demo.echo", {}, tenant="acme", defer_seconds=60)
    key, _ = await api.api_keys.create("acme", "pro")
    admin = await browser("admin")
    other = await browser("admin")  # a token valid for another session is no good here
    stolen = csrf_of((await other.get("/dashboard")).text)
    actions = {
        f"/dashboard/jobs/{job.id}/cancel": {},
        f"/dashboard/jobs/{job.id}/retry": {},
        "/dashboard/tenants/keys": {"tenant": "evil", "plan": "pro"},
        f"/dashboard/tenants/keys/{key.key_id}/revoke": {},
        "/dashboard/logout": {},
    }
    for url, fields in actions.items():
        for token in ({}, {"csrf_token": stolen}):
            reply = await admin.post(url, data={**fields, **token})
            assert reply.status_code == 403, (url, token)
    assert (await runner.get(job.id)).status is JobStatus.QUEUED
    assert [k.key_id for k in await api.api_keys.list()] == [key.key_id]
    assert (await admin.get("/dashboard")).status_code == 200  # still signed in
