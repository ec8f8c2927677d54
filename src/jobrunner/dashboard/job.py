"""A job's page: its fields, a live progress bar and message, the audit trail as a timeline,
the error with its code, params and result as JSON, links to its files, Cancel and Retry for
the operator, and for a waiting job why it waits. ``/stream`` keeps it live: progress events
move the bar, a status change (or, while it waits, every refresh interval) re-renders the panel.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.operations import route
from jobrunner.dashboard.access import Viewer, session_of, viewer
from jobrunner.dashboard.overview import CHART, ENDED
from jobrunner.dashboard.render import html_errors, render
from jobrunner.dashboard.session import PATH
from jobrunner.dashboard.sse import TICK, event, stream_response, ticking
from jobrunner.domain.minutes import merged, minute_of
from jobrunner.domain.models import JobEvent, JobRecord
from jobrunner.domain.status import ACTIVE, RETRYABLE, WAITING, JobStatus
from jobrunner.domain.waiting import capacity_for, explain_wait, share_percent
from jobrunner.errors import JobNotFoundError, RedisUnavailableError
from jobrunner.store.blobindex import blob_id
from jobrunner.store.queues import queue_spot
from jobrunner.store.workers import WorkerRegistry

__all__ = ["file_refs", "routes"]

log = structlog.get_logger("jobrunner.dashboard")

NOTICES = {
    "cancelled": "Cancelled: it will not run.",
    "cancel-requested": "Asked to stop: a running job stops within about a second.",
    "not-cancellable": "It had already finished: nothing to cancel.",
    "retried": "Retried: this is the new job.",
    "not-retryable": "Only failed, cancelled or expired jobs can be retried.",
}


def file_refs(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(field path, blob ref) for every blob ref inside params or a result."""
    if isinstance(value, str):
        return [(path or "value", value)] if blob_id(value) else []
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return []
    return [found for k, v in items for found in file_refs(v, f"{path}.{k}" if path else k)]


async def _result(who: Viewer, record: JobRecord) -> Any:
    """The inline result of a succeeded job (a large one is a file: linked, not loaded)."""
    if record.status is not JobStatus.SUCCEEDED or record.result_ref:
        return None
    async with who.api.guard("result"):
        raw = await who.runner.store.result_json(record.id)
    return None if raw is None else json.loads(raw)


async def why_it_waits(who: Viewer, record: JobRecord) -> dict[str, Any]:
    redis, keys, settings = who.runner.redis, who.runner.keys, who.settings
    now_ms = time.time() * 1000
    async with who.api.guard("queue position"):
        spot = await queue_spot(redis, record.queue, record.id)
        live = await WorkerRegistry(redis, keys).live()
        minutes = await who.state.minutes.read(minute_of(now_ms), CHART)
    capacity = capacity_for(record.plan, live, settings.plan_shares)
    finished = merged(minutes.values()).count(plan=record.plan, statuses=ENDED)
    wait = explain_wait(
        record,
        ahead=spot.ahead if spot else None,
        capacity=capacity,
        now=datetime.fromtimestamp(now_ms / 1000, tz=UTC),
        per_minute=finished / CHART or None,
    )
    share = share_percent(record.plan, settings.plan_shares, settings.plans)
    return {"wait": wait, "capacity": capacity, "share": share, "in_queue": spot is not None}


async def job_context(who: Viewer, record: JobRecord) -> dict[str, Any]:
    audit = await who.runner.audit(record.id)
    result = await _result(who, record)
    files = file_refs(record.params, "params") + file_refs(result, "result")
    if record.result_ref:
        files.append(("result", record.result_ref))
    return {
        "job": record,
        "audit": audit,
        "result": result,
        "files": files,
        "waiting": await why_it_waits(who, record) if record.status in WAITING else None,
        "can_cancel": who.is_admin and record.status in ACTIVE and not record.cancel_requested,
        "can_retry": who.is_admin and record.status in RETRYABLE,
        "terminal": record.is_terminal,
    }


async def _panel(who: Viewer, record: JobRecord) -> str:
    template = who.state.templates.get_template("_job.html")
    context = await job_context(who, record)
    return template.render(**context, session=who.session, csrf=who.session.csrf, base=PATH)


@html_errors
async def job_page(request: Request) -> Response:
    who = await viewer(request)
    record = await who.job(request.path_params["job_id"])
    notice = NOTICES.get(request.query_params.get("notice", ""))
    panel = await _panel(who, record)
    return render(
        request, "job.html", title=f"Job {record.id}", job=record, panel=panel, notice=notice
    )


def _progress(e: JobEvent) -> str:
    return json.dumps({"status": e.status.value, "progress": e.progress, "message": e.message})


async def _on_tick(request: Request, who: Viewer, job_id: str, *, waiting: bool) -> str | None:
    """What a quiet interval sends (the panel while the job waits, else a comment), or None
    once the session has ended."""
    if not (await session_of(request)).signed_in:
        return None
    if not waiting:
        return ": alive\n\n"
    return event("job", await _panel(who, await who.job(job_id)))


async def _updates(request: Request, who: Viewer, job_id: str) -> AsyncIterator[str]:
    """Progress as JSON, the re-rendered panel on status changes (and on every tick while it
    waits, as its place in the queue moves), ``end`` after a terminal status. While Redis is
    away the stream just ends: the browser reconnects by itself."""
    yield "retry: 3000\n\n"
    every = who.settings.dashboard_refresh_seconds
    waiting = True
    try:
        async with contextlib.aclosing(ticking(who.runner.watch(job_id), every)) as items:
            async for item in items:
                if item is TICK:
                    quiet = await _on_tick(request, who, job_id, waiting=waiting)
                    if quiet is None:
                        return  # signed out or revoked meanwhile
                    yield quiet
                    continue
                assert isinstance(item, JobEvent)
                waiting = item.status in WAITING
                yield event("progress", _progress(item))
                if item.kind != "progress":
                    yield event("job", await _panel(who, await who.job(job_id)))
                if item.is_terminal:
                    yield event("end", item.status.value)
                    return
    except JobNotFoundError:
        yield event("end", "gone")  # the record expired meanwhile
    except RedisUnavailableError as exc:
        log.warning("job stream ended", code=exc.code, error=exc.message)


@html_errors
async def job_stream(request: Request) -> Response:
    who = await viewer(request)
    record = await who.job(request.path_params["job_id"])
    return stream_response(_updates(request, who, record.id))


routes: list[BaseRoute] = [
    route(f"{PATH}/jobs/{{job_id}}", GET=job_page),
    route(f"{PATH}/jobs/{{job_id}}/stream", GET=job_stream),
]
