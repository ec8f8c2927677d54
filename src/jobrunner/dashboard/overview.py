"""The overview: per queue what waits, runs, is deferred and failed in the last hour; jobs
finished a minute and their p50/p95 run time over the last 15 minutes; live workers. Read from
counters and indices only (a handful of round trips whatever the number of jobs), and pushed
again to open pages every few seconds over Server-Sent Events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.operations import route
from jobrunner.dashboard.access import Viewer, session_of, viewer
from jobrunner.dashboard.charts import MinutePoint, throughput_chart
from jobrunner.dashboard.render import html_errors, render
from jobrunner.dashboard.session import PATH
from jobrunner.dashboard.sse import event, stream_response
from jobrunner.domain.minutes import MINUTE_MS, MinuteFigures, merged, minute_of, quantile
from jobrunner.domain.status import JobStatus
from jobrunner.domain.waiting import share_percent
from jobrunner.errors import InvalidInputError, RedisUnavailableError
from jobrunner.settings import Settings
from jobrunner.store.queues import QueueStats, queue_stats
from jobrunner.store.workers import WorkerRegistry

__all__ = ["Overview", "QueueRow", "read_overview", "routes"]

HOUR, CHART = 60, 15  # minutes
ENDED = ("succeeded", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class QueueRow:
    plan: str
    queued: int
    running: int
    deferred: int
    failed_last_hour: int
    finished_last_15: int
    workers: int
    share: float  # percent of a worker that consumes every plan


@dataclass(frozen=True)
class Overview:
    queues: list[QueueRow]
    statuses: dict[JobStatus, int]  # the viewer's jobs (a tenant's, or all) by status
    chart: list[MinutePoint]
    per_minute: float  # jobs finished a minute over the chart's window
    p50: float | None
    p95: float | None
    workers: list[dict[str, Any]]  # empty for tenants: hosts are the operator's business
    read_at: datetime


async def read_overview(who: Viewer) -> Overview:
    api, settings = who.api, who.settings
    redis, keys = who.runner.redis, who.runner.keys
    now_ms = time.time() * 1000
    async with api.guard("overview"):
        live = await WorkerRegistry(redis, keys).live()
        stats = await queue_stats(redis, keys, settings.plans, live, now_ms)
        minutes = await who.state.minutes.read(minute_of(now_ms), HOUR)
        statuses = await who.state.index.counts_by_status(who.tenant)
    recent = [minutes[m] for m in sorted(minutes)[-CHART:]]
    window = merged(recent)
    return Overview(
        queues=_rows(stats, merged(minutes.values()), window, settings),
        statuses=statuses,
        chart=_points(sorted(minutes)[-CHART:], recent),
        per_minute=window.count(statuses=ENDED) / CHART,
        p50=quantile(window.runs, 0.5),
        p95=quantile(window.runs, 0.95),
        workers=sorted(live, key=lambda w: str(w.get("id"))) if who.is_admin else [],
        read_at=datetime.fromtimestamp(now_ms / 1000, tz=UTC),
    )


def _rows(
    stats: list[QueueStats], hour: MinuteFigures, window: MinuteFigures, settings: Settings
) -> list[QueueRow]:
    return [
        QueueRow(
            plan=s.plan,
            queued=s.queued,
            running=s.running,
            deferred=s.deferred,
            failed_last_hour=hour.count(plan=s.plan, statuses=["failed"]),
            finished_last_15=window.count(plan=s.plan, statuses=ENDED),
            workers=s.workers,
            share=share_percent(s.plan, settings.plan_shares, settings.plans),
        )
        for s in stats
    ]


def _points(minutes: list[int], figures: list[MinuteFigures]) -> list[MinutePoint]:
    return [
        MinutePoint(
            label=datetime.fromtimestamp(m * MINUTE_MS / 1000, tz=UTC).strftime("%H:%M"),
            finished=f.count(statuses=ENDED),
            p50=quantile(f.runs, 0.5),
            p95=quantile(f.runs, 0.95),
        )
        for m, f in zip(minutes, figures, strict=True)
    ]


PANELS = {"overview": "_overview.html", "workers": "_workers.html"}


def _panel(who: Viewer, data: Overview, name: str = "overview") -> str:
    template = who.state.templates.get_template(PANELS[name])
    return template.render(
        o=data, chart=throughput_chart(data.chart), session=who.session, base=PATH, path=""
    )


@html_errors
async def overview_page(request: Request) -> Response:
    who = await viewer(request)
    data = await read_overview(who)
    return render(request, "overview.html", panel=_panel(who, data), title="Overview")


@html_errors
async def workers_page(request: Request) -> Response:
    who = await viewer(request, admin=True)
    data = await read_overview(who)
    return render(request, "workers.html", panel=_panel(who, data, "workers"), title="Workers")


async def _updates(request: Request, who: Viewer, name: str) -> AsyncIterator[str]:
    """The panel again every refresh interval, while the page is open."""
    every = who.settings.dashboard_refresh_seconds
    yield "retry: 3000\n\n"
    while True:
        try:
            data = await read_overview(who)
            yield event(name, _panel(who, data, name))
            await asyncio.sleep(every)
            if not (await session_of(request)).signed_in:
                return  # signed out or revoked meanwhile
        except RedisUnavailableError:
            yield ": redis unavailable, retrying\n\n"
            await asyncio.sleep(every)


@html_errors
async def overview_stream(request: Request) -> Response:
    """``?panel=workers`` streams the workers table (the operator's only)."""
    name = request.query_params.get("panel", "overview")
    who = await viewer(request, admin=name != "overview")
    if name not in PANELS:
        raise InvalidInputError(f"no panel {name[:40]!r}; panels: {list(PANELS)}")
    return stream_response(_updates(request, who, name))


routes: list[BaseRoute] = [
    route(PATH, GET=overview_page),
    route(f"{PATH}/workers", GET=workers_page),
    route(f"{PATH}/overview/stream", GET=overview_stream),
]
