"""Live job events: Server-Sent Events (``/stream``) and a WebSocket (``/ws``), both fed from
the store's event feed (``JobRunner.watch``), never by polling the record.

Each stream opens with the job's current state, then sends every change, and ends after a
terminal status. Events are states, so an event's id names the state it carries
(``<attempt>-<status>-<progress>``): a client reconnecting with ``Last-Event-ID`` gets the
current state only if it differs from the last one it saw, then the changes after it, and a
client that already saw the terminal event gets an empty stream that ends at once.

Both take the tenant's API key, or a stream token (``?token=``) for pages whose
``EventSource``/``WebSocket`` cannot send headers: ``POST .../stream-token`` issues one for one
job (store/stream_tokens.py), good for nothing but following that job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from jobrunner.api.auth import require_tenant, unauthorized
from jobrunner.api.bodies import parse_model, read_json
from jobrunner.api.models import StreamTokenRequest, StreamTokenView
from jobrunner.api.operations import Body, Reply, operation, route
from jobrunner.api.problems import Problem, from_error, problem_response
from jobrunner.api.replies import json_reply, owned_job
from jobrunner.api.services import ApiServices, services
from jobrunner.domain.models import JobEvent, JobRecord
from jobrunner.domain.views import API_PREFIX, EventView
from jobrunner.errors import JobRunnerError
from jobrunner.store.stream_tokens import StreamGrant

__all__ = ["event_id", "routes"]

Item = tuple[str, str, EventView]  # (id, event name, data)
_DONE = object()


def event_id(event: JobEvent) -> str:
    return f"{event.attempt}-{event.status.value}-{event.progress:g}"


async def job_events(api: ApiServices, job_id: str, last_id: str | None) -> AsyncIterator[Item]:
    """The job's states from now on, each once, starting after ``last_id``."""
    async with contextlib.aclosing(api.runner.watch(job_id)) as events:
        async for event in events:
            eid = event_id(event)
            if eid == last_id:
                continue
            last_id = eid
            yield eid, "progress" if event.kind == "progress" else "status", EventView.of(event)


def _sse(item: Item) -> str:
    eid, name, view = item
    return f"id: {eid}\nevent: {name}\ndata: {view.model_dump_json()}\n\n"


async def _pump(source: AsyncIterator[Item], queue: asyncio.Queue[Any]) -> None:
    try:
        async for item in source:
            await queue.put(item)
    except JobRunnerError as exc:
        await queue.put(exc)
    finally:
        await queue.put(_DONE)


async def sse_body(source: AsyncIterator[Item], heartbeat: float) -> AsyncIterator[str]:
    """SSE text: events as they come, a comment line after ``heartbeat`` quiet seconds."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    pump = asyncio.create_task(_pump(source, queue))
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if item is _DONE:
                return
            if isinstance(item, JobRunnerError):
                yield f"event: error\ndata: {json.dumps(from_error(item).body())}\n\n"
                return
            yield _sse(item)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


class StreamQuery(BaseModel):
    model_config = ConfigDict(extra="allow")

    token: str | None = Field(
        default=None,
        description="A stream token for this job (POST .../stream-token), instead of the "
        "Authorization header: for a browser's EventSource or WebSocket.",
    )


async def followed_job(conn: HTTPConnection) -> JobRecord:
    """The job a stream follows: by a stream token for it (``?token=``), else by the tenant's
    API key (spending one request of its rate)."""
    api = services(conn)
    job_id = conn.path_params["job_id"]
    token = conn.query_params.get("token")
    if token is None:
        return await owned_job(api, await require_tenant(conn), job_id)
    async with api.guard("authenticate"):
        grant = await api.stream_tokens.lookup(token)
    if grant is None:
        raise unauthorized("unknown or expired stream token", invalid=True)
    if grant.job_id != job_id:
        raise Problem(403, "forbidden", "this stream token is for another job")
    conn.scope.setdefault("state", {})["tenant"] = grant.tenant
    return await owned_job(api, grant, job_id)


@operation(
    "Follow a job (Server-Sent Events)",
    tag="jobs",
    auth="tenant",
    description="`status` and `progress` events (JSON data, ids naming the state), a comment "
    "heartbeat every 15 s, resumable with `Last-Event-ID`; the stream ends after a terminal "
    "status. The WebSocket `/api/v1/jobs/{job_id}/ws` sends the same events as JSON messages "
    "`{id, event, data}` and closes (1000) after a terminal status. Both also take a stream "
    "token (`?token=`) instead of the API key.",
    query=StreamQuery,
    headers={"Last-Event-ID": "Resume after this event."},
    responses={
        200: Reply("The event stream", schema={"type": "string"}, media_type="text/event-stream")
    },
)
async def stream(request: Request) -> Response:
    record = await followed_job(request)
    api = services(request)
    source = job_events(api, record.id, request.headers.get("last-event-id"))
    return StreamingResponse(
        sse_body(source, api.settings.stream_heartbeat_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def socket(ws: WebSocket) -> None:
    """The same events as JSON messages ``{id, event, data}``; closes (1000) after a terminal
    status. Authenticated like ``/stream``: the API key, or a stream token (``?token=``)."""
    api = services(ws)
    try:
        record = await followed_job(ws)
    except (Problem, JobRunnerError) as exc:
        await _deny(ws, exc if isinstance(exc, Problem) else from_error(exc))
        return
    await ws.accept()
    sender = asyncio.create_task(_send_events(ws, job_events(api, record.id, None)))
    listener = asyncio.create_task(_until_disconnect(ws))
    done, pending = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if sender in done:
        with contextlib.suppress(Exception):  # the client may be gone already
            await ws.close(1000 if sender.exception() is None else 1011)


async def _send_events(ws: WebSocket, source: AsyncIterator[Item]) -> None:
    async for eid, name, view in source:
        await ws.send_text(f'{{"id":"{eid}","event":"{name}","data":{view.model_dump_json()}}}')


async def _until_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _deny(ws: WebSocket, problem: Problem) -> None:
    """Refuse the handshake: with the problem as an HTTP response where the server can send
    one, else a policy-violation close."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem_response(problem, ws.url.path))
    else:
        await ws.close(1008, problem.detail[:120])


@operation(
    "Get a stream token for a job",
    tag="jobs",
    auth="tenant",
    description="A token that lets a page follow this one job's events without the API key "
    "(a browser's EventSource cannot send headers, and an API key does not belong in a "
    "browser): your backend asks for it and hands the page `stream_url` or `ws_url`. The "
    "token grants nothing else, and is stored only hashed. The body is optional.",
    body=Body({"application/json": StreamTokenRequest}, required=False),
    responses={201: Reply("The token, and the stream URLs that carry it", StreamTokenView)},
)
async def stream_token(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    record = await owned_job(api, principal, request.path_params["job_id"])
    data = await read_json(request, api.settings.max_body_bytes, optional=True)
    spec = StreamTokenRequest() if data is None else parse_model(StreamTokenRequest, data)
    async with api.guard("stream token"):
        grant = StreamGrant(principal.tenant, record.id)
        token = await api.stream_tokens.issue(grant, spec.ttl_seconds)
    expires = datetime.now(tz=UTC) + timedelta(seconds=spec.ttl_seconds)
    base = f"{API_PREFIX}/jobs/{record.id}"
    view = StreamTokenView(
        token=token,
        job_id=record.id,
        expires_at=expires,
        stream_url=f"{base}/stream?token={token}",
        ws_url=f"{base}/ws?token={token}",
    )
    return json_reply(view, 201, {"Cache-Control": "no-store"})


_JOB = f"{API_PREFIX}/jobs/{{job_id}}"
routes: list[BaseRoute] = [
    route(f"{_JOB}/stream", GET=stream),
    route(f"{_JOB}/stream-token", POST=stream_token),
    WebSocketRoute(f"{_JOB}/ws", socket),
]
