"""``POST /api/v1/jobs``: a JSON body, or a multipart form whose ``file`` becomes the job's
``params.input_uri`` (stored as an upload in the same request).

Idempotency: ``Idempotency-Key`` (header) or ``idempotency_key`` (body), per tenant. The same
key with the same body returns the first job (200, ``Idempotent-Replayed: true``); with another
body it is 422. "The same body" is the same JSON document once parsed, the key itself left out:
key order and whitespace do not matter, every value does (an explicit default differs from an
omitted field). In a multipart form the file counts by its content (SHA-256) and filename, not
by the new ref each request's upload gets.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from jobrunner.api.auth import Principal, require_submitter
from jobrunner.api.bodies import body_stream, parse_model, read_json
from jobrunner.api.checks import check_callback_url, check_params_refs, choose_plan, invalid
from jobrunner.api.middleware import correlation_id
from jobrunner.api.models import IDEMPOTENCY_KEY, JobSubmission
from jobrunner.api.multipart import MultipartReader, boundary_of
from jobrunner.api.openapi import multipart_submission_schema, submission_schema
from jobrunner.api.operations import Body, Reply, operation
from jobrunner.api.replies import job_reply
from jobrunner.api.services import ApiServices, services
from jobrunner.api.uploads import UploadView, discard_upload, multipart_limit, store_upload
from jobrunner.api.usage import Reservation, give_back, on_unit
from jobrunner.domain.views import JobView
from jobrunner.runtime import Submitted
from jobrunner.store.limits import billing_period
from jobrunner.submission import EnqueueRequest, parse_request

__all__ = ["submit_job"]

_MAX_FIELDS = 32
SUBMIT_BODY = Body(
    {
        "application/json": submission_schema,
        "multipart/form-data": multipart_submission_schema,
    }
)


@dataclass
class Form:
    """A submission as received: its fields, and the file a multipart form carried."""

    body: Any
    upload: UploadView | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@operation(
    "Submit a job",
    tag="jobs",
    auth="tenant",
    description="JSON, or multipart/form-data with fields `task`, `params` (JSON text), any "
    "other option as text, and one `file` (stored as an upload; its ref becomes "
    "`params.input_uri`). The job is in Redis before the 202 is sent.",
    body=SUBMIT_BODY,
    headers={
        "Idempotency-Key": "Same key and body: the same job (200); other body: 422.",
        "X-Correlation-Id": "Carried into the job and every log line; made when absent.",
    },
    responses={
        202: Reply("Accepted", JobView, headers=("Location",)),
        200: Reply("An idempotent replay: the earlier job", JobView, headers=("Location",)),
    },
)
async def submit_job(request: Request) -> Response:
    period = billing_period(datetime.now(tz=UTC))
    principal, unit = await require_submitter(request, period)  # auth, rate, quota: one call
    api = services(request)
    reservation: Reservation = (unit, period)
    try:
        form, prepared = await _receive(request, api, principal)
    except BaseException:
        await give_back(api, principal, reservation)
        raise

    async def submit() -> Submitted:
        return await api.runner.submit_or_replay(prepared.request, fingerprint=prepared.fingerprint)

    try:
        submitted = await on_unit(api, principal, reservation, submit, prepared.key)
    except BaseException:
        if form.upload is not None:
            await discard_upload(api, form.upload.uri)
        raise
    if submitted.replayed and form.upload is not None:
        await discard_upload(api, form.upload.uri)
    return job_reply(
        submitted.record, 200 if submitted.replayed else 202, replayed=submitted.replayed
    )


@dataclass(frozen=True)
class Prepared:
    """A submission checked and ready for the JobRunner."""

    request: EnqueueRequest
    fingerprint: str | None  # what a repeated idempotency key is compared by
    key: str | None  # the idempotency key


async def _receive(
    request: Request, api: ApiServices, principal: Principal
) -> tuple[Form, Prepared]:
    """The body read and checked (an upload it stored is discarded when the checks fail)."""
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is None:
        form = Form(await read_json(request, api.settings.max_body_bytes))
    else:
        form = await _read_form(request, api, principal.tenant, boundary)
    try:
        return form, await _prepare(request, api, principal, form)
    except BaseException:
        if form.upload is not None:
            await discard_upload(api, form.upload.uri)
        raise


async def _prepare(
    request: Request, api: ApiServices, principal: Principal, form: Form
) -> Prepared:
    if not isinstance(form.body, dict):
        raise invalid("(root)", "the body must be a JSON object")
    key = _idempotency_key(request, form.body)
    sub = parse_model(JobSubmission, form.body)
    params = dict(sub.params)
    if form.upload is not None:
        if "input_uri" in params:
            raise invalid("params.input_uri", "give input_uri or a file, not both")
        params["input_uri"] = form.upload.uri
    plan = choose_plan(principal, sub.plan, api.settings)
    if sub.callback_url is not None:
        check_callback_url(sub.callback_url, allow_private=api.settings.connector_allow_private)
    await check_params_refs(api, principal.tenant, params)
    enqueue = _enqueue_request(sub, params, principal, plan, key, correlation_id(request.scope))
    fingerprint = _fingerprint(form) if key is not None else None  # compared only with a key
    return Prepared(enqueue, fingerprint, key)


def _idempotency_key(request: Request, body: dict[str, Any]) -> str | None:
    header = request.headers.get("idempotency-key")
    in_body = body.get("idempotency_key")
    if header is None:
        return in_body if isinstance(in_body, str) else None
    if not re.fullmatch(IDEMPOTENCY_KEY, header):
        raise invalid("header.Idempotency-Key", "1-200 printable ASCII characters, no spaces")
    if in_body is not None and in_body != header:
        raise invalid("idempotency_key", "differs from the Idempotency-Key header")
    return header


def _enqueue_request(
    sub: JobSubmission,
    params: dict[str, Any],
    principal: Principal,
    plan: str,
    key: str | None,
    cid: str,
) -> EnqueueRequest:
    return parse_request(
        {
            "task": sub.task,
            "params": params,
            "tenant": principal.tenant,
            "plan": plan,
            "priority": sub.priority,
            "idempotency_key": key,
            "correlation_id": cid or None,
            "defer_seconds": sub.defer_s,
            "run_at": sub.run_at,
            "ttl_seconds": sub.ttl_s,
            "timeout_seconds": sub.timeout_s,
            "max_tries": sub.max_tries,
            "callback_url": sub.callback_url,
        }
    )


def _fingerprint(form: Form) -> str:
    body = {k: v for k, v in form.body.items() if k != "idempotency_key"}
    if form.upload is not None:
        up = form.upload
        body["file"] = {"sha256": up.sha256, "filename": up.filename, "type": up.content_type}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _read_form(request: Request, api: ApiServices, tenant: str, boundary: bytes) -> Form:
    reader = MultipartReader(body_stream(request, multipart_limit(api)), boundary)
    form = Form({})
    try:
        while (part := await reader.next_part()) is not None:
            if part.filename is not None:
                if part.name != "file" or form.upload is not None:
                    raise invalid("file", "send at most one file, in a part named 'file'")
                form.upload = await store_upload(
                    api,
                    tenant,
                    reader.chunks(),
                    filename=part.filename,
                    content_type=part.content_type,
                )
            elif part.name in form.body or len(form.body) >= _MAX_FIELDS:
                raise invalid(part.name, "a field given twice (or too many fields)")
            else:
                form.body[part.name] = await reader.text(api.settings.max_body_bytes)
        if "params" in form.body:
            form.body["params"] = _json_field(form.body["params"], "params")
    except BaseException:
        if form.upload is not None:
            await discard_upload(api, form.upload.uri)
        raise
    return form


def _json_field(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(name, f"not JSON: {exc}") from exc
