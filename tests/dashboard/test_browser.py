"""The dashboard in a real browser: Debian's Chromium driven by Playwright against the app
served by uvicorn on a free port, with a worker in the same event loop.

One scenario (a browser start costs seconds): sign in, watch a demo.sleep job's progress bar
reach 100% without a reload, cancel a running job, retry a failed demo.flaky job, filter the
jobs table, save screenshots of the overview and a job page, and check that nothing was loaded
from another host and no Content-Security-Policy violation was reported.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from jobrunner.runtime import JobRunner
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's; no browser downloads
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def sign_in(page: Page, site: str) -> None:
    await page.goto(f"{site}/dashboard")
    await expect(page).to_have_url(f"{site}/dashboard/login?next=%2Fdashboard")
    await page.fill("#secret", ADMIN_TOKEN)
    await page.click("button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Overview")


async def watch_progress(page: Page, site: str, job_id: str) -> list[float]:
    """Open the job's page and read its progress bar until the job succeeds, without a reload
    (a marker set on the window at the start must still be there at the end)."""
    await page.goto(f"{site}/dashboard/jobs/{job_id}")
    await page.evaluate("window.__notReloaded = true")
    bar = page.locator("#job-progress")
    seen: list[float] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the page's own value, read as the stream moves it
        value = float(await bar.evaluate("e => e.value"))
        if not seen or value != seen[-1]:
            seen.append(value)
        if value >= 100:
            break
        await asyncio.sleep(0.02)
    await expect(page.locator("#job-status")).to_have_text("succeeded")
    assert await page.evaluate("window.__notReloaded === true")
    return seen


async def test_the_dashboard_in_chromium(
    site: str,
    chromium: Browser,
    runner: JobRunner,
    worker: WorkerRunner,
    tmp_path: Path,
) -> None:
    context = await chromium.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = await context.new_page()
    csp_reports: list[str] = []
    page.on(
        "console",
        lambda m: csp_reports.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await sign_in(page, site)

    # a job's progress bar moves to 100% live
    for i in range(6):
        await runner.enqueue("demo.echo", {"n": i}, tenant=("acme", "globex")[i % 2], plan="pro")
    sleeper = await runner.enqueue(
        "demo.sleep", {"seconds": 2.0, "steps": 8}, tenant="acme", plan="business"
    )
    seen = await watch_progress(page, site, sleeper.id)
    assert seen[-1] == 100 and any(0 < value < 100 for value in seen), seen
    await page.screenshot(path=str(tmp_path / "job.png"), full_page=True)

    # cancel a running job from its page
    long = await runner.enqueue("demo.sleep", {"seconds": 60, "steps": 600}, tenant="globex")
    await page.goto(f"{site}/dashboard/jobs/{long.id}")
    await expect(page.locator("#job-status")).to_have_text("running", timeout=10_000)
    await page.click("#cancel")
    await expect(page.locator(".notice")).to_contain_text("Asked to stop")
    await expect(page.locator("#job-status")).to_have_text("cancelled", timeout=10_000)
    assert (await runner.get(long.id)).status == "cancelled"

    # retry a failed demo.flaky job
    flaky = await runner.enqueue("demo.flaky", {"fail_times": -1}, tenant="acme", max_tries=1)
    await runner.wait(flaky.id, timeout=10)
    await page.goto(f"{site}/dashboard/jobs/{flaky.id}")
    await expect(page.locator("#job-status")).to_have_text("failed")
    await expect(page.locator(".error-box")).to_contain_text("flaky_permanent")
    await page.click("#retry")
    await expect(page.locator(".notice")).to_contain_text("Retried")
    assert f"/dashboard/jobs/{flaky.id}" not in page.url
    await expect(page.locator(f"a[href='/dashboard/jobs/{flaky.id}']")).to_be_visible()
    retried_id = urlsplit(page.url).path.rsplit("/", 1)[-1]
    assert (await runner.get(retried_id)).retry_of == flaky.id
    await expect(page.locator("#job-status")).to_have_text("failed", timeout=10_000)

    # filter the jobs table
    await page.goto(f"{site}/dashboard/jobs")
    await page.select_option("select[name=status]", "failed")
    await page.click(".filters button[type=submit]")
    await expect(page).to_have_url(f"{site}/dashboard/jobs?status=failed")
    rows = page.locator("table.jobs tbody tr")
    assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.job)")) == sorted(
        [flaky.id, retried_id]
    )
    await page.select_option("select[name=status]", "")
    await page.fill("input[name=tenant]", "globex")
    await page.click(".filters button[type=submit]")
    tenants = await page.locator("table.jobs tbody tr td:nth-child(4)").all_inner_texts()
    assert tenants and set(tenants) == {"globex"}

    # the overview, live: the figures refresh without a reload
    await page.goto(f"{site}/dashboard")
    await page.evaluate("window.__notReloaded = true")
    stamp = await page.locator(".updated time").inner_text()
    await expect(page.locator(".updated time")).not_to_have_text(stamp, timeout=5_000)
    assert await page.evaluate("window.__notReloaded === true")
    heights = await page.locator("svg.chart rect.bar").evaluate_all(
        "bars => bars.map(b => parseFloat(b.getAttribute('height')))"
    )
    assert len(heights) == 15 and heights[-1] > 0, heights  # this minute's finished jobs
    await expect(page.locator("table.workers")).to_contain_text(worker.worker_id)
    await page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    await context.close()

    for shot in ("overview.png", "job.png"):
        assert (tmp_path / shot).stat().st_size > 10_000
    hosts = {urlsplit(url).netloc for url in requested}
    assert hosts == {urlsplit(site).netloc}, requested
    assert not csp_reports, csp_reports
