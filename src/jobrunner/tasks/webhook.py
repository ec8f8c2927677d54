"""``jobrunner.deliver_webhook``: POST a finished job's representation to its callback_url.

The body is what ``GET /api/v1/jobs/{id}`` shows (``domain.views.job_view``), signed with
HMAC-SHA256 under the tenant's webhook secret (``X-Jobrunner-Signature: t=<unix>,v1=<hex>``
over ``"<t>.<body>"``). The target goes through the connector's SSRF checks (every resolved
address must be public unless JOBRUNNER_CONNECTOR_ALLOW_PRIVATE, and the connection is pinned
to the checked address). Each attempt lands in the job's audit trail; a refusal worth another
try (5xx, 408, 425, 429, network errors, timeouts) is retried with backoff by the usual retry
machinery, other answers fail at once. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from jobrunner.callbacks import WEBHOOK_TASK
from jobrunner.context import JobContext
from jobrunner.domain.models import AuditEntry, JobError, JobRecord
from jobrunner.domain.retry import RetryPolicy
from jobrunner.domain.views import job_view
from jobrunner.domain.webhooks import SIGNATURE_HEADER, signature_header
from jobrunner.errors import JobNotFoundError, PermanentError, TaskError, TransientError
from jobrunner.pipelines.urlcheck import parse_url
from jobrunner.registry import Task
from jobrunner.settings import Settings
from jobrunner.store.audit import append_audit
from jobrunner.store.jobs import JobStore
from jobrunner.store.tenants import ApiKeys
from jobrunner.tasks.outbound import pinned_request, resolve_checked

__all__ = ["WebhookParams", "webhook_task"]

_RETRYABLE_4XX = frozenset({408, 425, 429})  # the receiver asks us to come back later
USER_AGENT = "jobrunner-webhooks/1"


class WebhookParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="The finished job to report.")


def webhook_task(settings: Settings) -> Task[WebhookParams]:
    """The delivery task, with the retry policy and timeout from ``settings``."""

    async def deliver_webhook(ctx: JobContext, params: WebhookParams) -> dict[str, Any]:
        return await deliver(ctx, params.job_id, settings)

    return Task(
        name=WEBHOOK_TASK,
        fn=deliver_webhook,
        params_model=WebhookParams,
        timeout_seconds=settings.webhook_timeout_seconds + 5,
        retry=RetryPolicy(
            max_tries=settings.webhook_max_tries,
            base_seconds=settings.webhook_retry_base_seconds,
            cap_seconds=settings.webhook_retry_cap_seconds,
        ),
        description="POST a finished job's representation to its callback_url, signed.",
        tags=("system",),
    )


async def deliver(ctx: JobContext, job_id: str, settings: Settings) -> dict[str, Any]:
    store = ctx.store
    if store is None:
        raise PermanentError("webhook delivery needs the job store", code="webhook_no_store")
    record = await _finished_job(store, job_id, ctx.tenant)
    url = str(record.callback_url)
    body = job_view(record).model_dump_json().encode()
    headers = await _headers(store, record, body, ctx.job_id, settings)
    try:
        status = await post(url, body, headers, settings)
    except TaskError as exc:
        await _record(store, record.id, ctx.attempt, exc.details.get("status"), exc)
        raise
    await _record(store, record.id, ctx.attempt, status, None)
    ctx.log.info("webhook delivered", job_id=record.id, status=status)
    return {"job_id": record.id, "url": url, "http_status": status}


async def _finished_job(store: JobStore, job_id: str, tenant: str) -> JobRecord:
    try:
        record = await store.get(job_id)
    except JobNotFoundError:
        record = None
    # a delivery only ever reports a job of its own tenant
    if record is None or record.tenant != tenant or record.callback_url is None:
        raise PermanentError(f"no job {job_id} with a callback_url", code="webhook_job_not_found")
    if not record.is_terminal:
        raise PermanentError(f"job {job_id} has not ended", code="webhook_job_not_finished")
    return record


async def _headers(
    store: JobStore, record: JobRecord, body: bytes, delivery_id: str, settings: Settings
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Jobrunner-Event": f"job.{record.status.value}",
        "X-Jobrunner-Delivery": delivery_id,  # the same on every retry: receivers dedupe by it
    }
    if record.correlation_id:
        headers["X-Correlation-Id"] = record.correlation_id
    secret = await webhook_secret(store, record.tenant, settings)
    if secret:
        headers[SIGNATURE_HEADER] = signature_header(secret, body, int(time.time()))
    return headers


async def webhook_secret(store: JobStore, tenant: str, settings: Settings) -> str | None:
    """The tenant's own secret (set with its API keys), else the deployment's default."""
    own = await ApiKeys(store.redis, store.keys).webhook_secret(tenant)
    default = settings.webhook_secret
    return own or (default.get_secret_value() if default else None)


async def post(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> int:
    """POST ``body`` to a checked, pinned address; the receiver's status, or a TaskError."""
    target = parse_url(url)
    timeout = settings.webhook_timeout_seconds
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, trust_env=False) as client,
        ):
            address = await resolve_checked(target, settings.connector_allow_private)
            request = pinned_request(client, target, address, headers, method="POST", content=body)
            response = await client.send(request, stream=True)  # redirects are not followed
            await response.aclose()  # the receiver's body is not read
    except (TimeoutError, httpx.TimeoutException) as exc:
        msg = f"POST {url}: no answer within {timeout:g}s"
        raise TransientError(msg, code="webhook_timeout") from exc
    except httpx.RequestError as exc:
        msg = f"POST {url}: {exc or type(exc).__name__}"
        raise TransientError(msg, code="webhook_network_error") from exc
    return _checked(response.status_code, url)


def _checked(status: int, url: str) -> int:
    if 200 <= status < 300:
        return status
    msg = f"POST {url} answered {status}"
    if status >= 500 or status in _RETRYABLE_4XX:
        raise TransientError(msg, code="webhook_http_error", status=status)
    raise PermanentError(msg, code="webhook_http_error", status=status)


async def _record(
    store: JobStore, job_id: str, attempt: int, status: int | None, error: TaskError | None
) -> None:
    entry = AuditEntry(
        at=datetime.now(tz=UTC),
        event="webhook_failed" if error else "webhook_delivered",
        attempt=attempt,
        http_status=status,
        error=None
        if error is None
        else JobError(
            type=type(error).__name__,
            code=error.code,
            message=error.message,
            retryable=error.retryable,
            attempt=attempt,
        ),
    )
    await append_audit(store.redis, store.keys, job_id, entry)
