"""Admission: a validated EnqueueRequest becomes a record to create and an arq entry to add.

Pure apart from the clock and id passed in; no Redis here.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.jobs import serialize_job

from jobrunner.domain.models import AuditEntry, JobRecord, ms_to_dt
from jobrunner.domain.status import JobStatus
from jobrunner.errors import InvalidInputError, InvalidOverrideError, ParamsTooLargeError
from jobrunner.registry import Registry, Task
from jobrunner.serializer import serialize
from jobrunner.settings import Settings
from jobrunner.store.codec import dumps
from jobrunner.store.creation import ArqEnqueue, NewJob
from jobrunner.store.keys import Keys
from jobrunner.submission import EnqueueRequest

# A higher priority moves a ready job this far back in arq's score order (ahead of older jobs).
PRIORITY_STEP_MS = 60_000


def timeout_limit(task: Task[Any], settings: Settings) -> float:
    """The longest timeout a job of ``task`` may ask for."""
    default = task.timeout_seconds or settings.default_timeout_seconds
    return task.max_timeout_seconds or max(default, settings.max_timeout_seconds)


@dataclass(frozen=True)
class Admitted:
    """A request ready to store: the record to create and where arq should queue it."""

    new: NewJob
    task: Task[Any]
    queue: str
    score_ms: int
    arq_ttl_ms: int
    params: dict[str, Any]  # as stored (params_json decoded), for the record handed back

    @property
    def ready_now(self) -> bool:
        return self.score_ms <= time.time() * 1000

    @property
    def arq_kwargs(self) -> dict[str, Any]:
        return {} if self.new.expires_ms is None else {"expires_ms": self.new.expires_ms}

    def arq_entry(self) -> ArqEnqueue:
        """arq's own job entry (its payload format), written beside the record in one call."""
        created = int(self.new.created_ms)
        payload = serialize_job(
            self.task.name, (), self.arq_kwargs, None, created, serializer=serialize
        )
        return ArqEnqueue(
            queue=self.queue, payload=payload, ttl_ms=self.arq_ttl_ms, score=self.score_ms
        )

    def record(self) -> JobRecord:
        """The record as created, built from what was admitted (no Redis read, no decode).
        Every field is given: model_construct then skips resolving defaults, too."""
        f = self.new.fields
        return JobRecord.model_construct(
            id=self.new.job_id,
            task=self.task.name,
            params=self.params,
            status=JobStatus.QUEUED,
            progress=0.0,
            message=None,
            attempts=0,
            max_tries=f["max_tries"],
            interruptions=0,
            queue=self.queue,
            plan=f["plan"],
            priority=f["priority"],
            tenant=self.new.tenant,
            correlation_id=f["correlation_id"],
            idempotency_key=f["idempotency_key"],
            timeout_seconds=float(f["timeout_seconds"]),
            created_at=datetime.fromtimestamp(f["created_at"] / 1000, tz=UTC),
            scheduled_at=datetime.fromtimestamp(f["scheduled_at"] / 1000, tz=UTC),
            expires_at=ms_to_dt(f["expires_at"]),
            started_at=None,
            finished_at=None,
            next_attempt_at=None,
            cancel_requested=False,
            worker_id=None,
            error=None,
            result_ref=None,
            callback_url=f["callback_url"],
            retry_of=f["retry_of"],
        )


class Admission:
    """Checks a request against the registry and settings, and lays out its record."""

    def __init__(self, settings: Settings, registry: Registry, keys: Keys) -> None:
        self.settings = settings
        self.registry = registry
        self.keys = keys

    def admit(self, req: EnqueueRequest, now_ms: float, fingerprint: str | None = None) -> Admitted:
        """``fingerprint`` is what an idempotency key is compared by (default: task + params)."""
        task = self.registry.get(req.task)
        params, params_json = self._params(task, req)
        plan = req.plan or task.queue or self.settings.default_plan
        if plan not in self.settings.plans:
            plans = list(self.settings.plans)
            raise InvalidInputError(f"unknown plan {plan!r}; plans: {plans}", plan=plan)
        scheduled = _scheduled_ms(req, now_ms)
        self._check_schedule(req, scheduled - now_ms)
        expires = scheduled + req.ttl_seconds * 1000 if req.ttl_seconds else None
        job_id = uuid.uuid4().hex
        fields = self._fields(task, req, job_id, params_json, plan, now_ms, scheduled, expires)
        new = NewJob(
            job_id=job_id,
            tenant=req.tenant,
            task=task.name,
            fields=fields,
            created_ms=now_ms,
            audit=AuditEntry(at=datetime.now(tz=UTC), event="enqueued", status=JobStatus.QUEUED),
            fingerprint=_fingerprint(req, task, params_json, fingerprint),
            idempotency_key=req.idempotency_key,
            expires_ms=expires,
        )
        ready = scheduled <= now_ms
        # arq's score is whole ms: a deferred job's is rounded up, never eligible before its time
        score = int(scheduled - req.priority * PRIORITY_STEP_MS) if ready else math.ceil(scheduled)
        arq_ttl = int((expires or scheduled) - now_ms + self.settings.job_key_ttl_seconds * 1000)
        return Admitted(new, task, self.keys.queue(plan), score, arq_ttl, params)

    def _check_schedule(self, req: EnqueueRequest, ahead_ms: float) -> None:
        """How far ahead a job starts, and how long it may wait, are bounded by settings."""
        s = self.settings
        if ahead_ms > s.max_defer_seconds * 1000:
            field = "run_at" if req.run_at is not None else "defer_seconds"
            raise InvalidOverrideError(
                f"{field}: the job would start {ahead_ms / 1000:g}s from now; the limit is "
                f"{s.max_defer_seconds:g}s (JOBRUNNER_MAX_DEFER_SECONDS)",
                field=field,
                limit=s.max_defer_seconds,
            )
        if req.ttl_seconds is not None and req.ttl_seconds > s.max_ttl_seconds:
            raise InvalidOverrideError(
                f"ttl_seconds {req.ttl_seconds:g} is over the limit of {s.max_ttl_seconds:g}s "
                "(JOBRUNNER_MAX_TTL_SECONDS)",
                field="ttl_seconds",
                limit=s.max_ttl_seconds,
            )

    def _params(self, task: Task[Any], req: EnqueueRequest) -> tuple[dict[str, Any], str]:
        """The params as the task's model reads them, and as stored (JSON)."""
        limit = self.settings.max_params_bytes
        raw_size = len(dumps(req.params).encode())
        if raw_size > limit:
            raise ParamsTooLargeError(
                f"params are {raw_size} bytes; the limit is {limit}", size=raw_size, limit=limit
            )
        params = task.parse(req.params).model_dump(mode="json")
        return params, dumps(params)

    def _fields(
        self,
        task: Task[Any],
        req: EnqueueRequest,
        job_id: str,
        params_json: str,
        plan: str,
        now_ms: float,
        scheduled: float,
        expires: float | None,
    ) -> dict[str, Any]:
        timeout, max_tries = self._limits(task, req)
        return {
            "id": job_id,
            "task": task.name,
            "params": params_json,
            "status": JobStatus.QUEUED.value,
            "progress": 0.0,
            "attempts": 0,
            "max_tries": max_tries,
            "interruptions": 0,
            "queue": self.keys.queue(plan),
            "plan": plan,
            "priority": req.priority,
            "tenant": req.tenant,
            "correlation_id": req.correlation_id or job_id,
            "idempotency_key": req.idempotency_key,
            "timeout_seconds": timeout,
            "created_at": now_ms,
            "scheduled_at": scheduled,
            "expires_at": expires,
            "callback_url": req.callback_url,
            "retry_of": req.retry_of,
        }

    def _limits(self, task: Task[Any], req: EnqueueRequest) -> tuple[float, int]:
        limit = timeout_limit(task, self.settings)
        timeout = (
            req.timeout_seconds or task.timeout_seconds or self.settings.default_timeout_seconds
        )
        if timeout > limit:
            raise InvalidOverrideError(
                f"timeout_seconds {timeout:g} is over {task.name}'s limit of {limit:g}s",
                field="timeout_seconds",
                limit=limit,
            )
        policy = task.retry or self.settings.retry_policy
        max_tries = req.max_tries or policy.max_tries
        tries_limit = max(task.max_tries_limit, policy.max_tries)
        if max_tries > tries_limit:
            raise InvalidOverrideError(
                f"max_tries {max_tries} is over {task.name}'s limit of {tries_limit}",
                field="max_tries",
                limit=tries_limit,
            )
        return timeout, max_tries


def _fingerprint(req: EnqueueRequest, task: Task[Any], params_json: str, given: str | None) -> str:
    """What a repeated idempotency key is compared by; nothing to compare without a key."""
    if req.idempotency_key is None:
        return ""
    return given or hashlib.sha256(f"{task.name}\0{params_json}".encode()).hexdigest()


def _scheduled_ms(req: EnqueueRequest, now_ms: float) -> float:
    if req.run_at is not None:
        return max(req.run_at.timestamp() * 1000, now_ms)
    return now_ms + (req.defer_seconds or 0) * 1000
