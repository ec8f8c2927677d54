"""The one place Redis key names are spelled. arq's own keys come from ``arq.constants``."""

from __future__ import annotations

from dataclasses import dataclass

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

# Stands for "every tenant" in index names: never a tenant's name (see NAME_PATTERN), so
# ``idx:*:all`` and ``idx:*:status:failed`` index the jobs of all tenants together.
ALL_TENANTS = "*"


@dataclass(frozen=True)
class Keys:
    """Key names under one deployment's prefix, so several deployments can share a Redis."""

    prefix: str

    def queue(self, plan: str) -> str:
        return f"{self.prefix}:queue:{plan}"

    @property
    def maintenance_queue(self) -> str:
        return f"{self.prefix}:queue:_maintenance"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def audit(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:audit"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:result"

    def task_bounces(self, job_id: str) -> str:
        """Counter of the times workers without the job's task put it back on its queue."""
        return f"{self.prefix}:job:{job_id}:bounces"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:events:{job_id}"

    def tenant_index(self, tenant: str) -> str:
        return f"{self.prefix}:idx:{tenant}:all"

    def status_index(self, tenant: str, status: str) -> str:
        return f"{self.prefix}:idx:{tenant}:status:{status}"

    def task_index(self, tenant: str, task: str) -> str:
        return f"{self.prefix}:idx:{tenant}:task:{task}"

    def plan_index(self, plan: str) -> str:
        """Every tenant's jobs of one plan (queue), by creation time."""
        return f"{self.prefix}:idx:{ALL_TENANTS}:plan:{plan}"

    @property
    def running_snapshot(self) -> str:
        """Reconcile's own copy of every tenant's running index, for the length of one walk."""
        return f"{self.prefix}:reconcile:running"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}:tenants"

    @property
    def expiring(self) -> str:
        """Zset of job ids by the time they expire if not started."""
        return f"{self.prefix}:expiring"

    @property
    def finished(self) -> str:
        """Zset of terminal job ids by finish time, for the cleanup cron."""
        return f"{self.prefix}:finished"

    @property
    def callbacks_due(self) -> str:
        """Zset of ended jobs with a callback_url whose delivery job is not enqueued yet, by end
        time (ms): the outbox the record scripts write when they seal a job."""
        return f"{self.prefix}:callbacks:due"

    def idempotency(self, tenant: str, key: str) -> str:
        return f"{self.prefix}:idem:{tenant}:{key}"

    @property
    def wake(self) -> str:
        """Pub/sub channel that wakes idle workers when a job is enqueued or aborted."""
        return f"{self.prefix}:wake"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    # -- HTTP API: keys, tenants, limits, blob ownership -----------------------------------

    def api_key(self, digest: str) -> str:
        """Hash of one API key, found by the SHA-256 of the key (the key itself is never kept)."""
        return f"{self.prefix}:apikey:{digest}"

    def stream_token(self, digest: str) -> str:
        """One stream token's grant (JSON: tenant, job id), by the token's SHA-256; expires with
        the token."""
        return f"{self.prefix}:streamtoken:{digest}"

    @property
    def api_keys(self) -> str:
        """Hash key_id -> digest: every API key, for listing and revoking by id."""
        return f"{self.prefix}:apikeys"

    def tenant(self, tenant: str) -> str:
        """Hash of a tenant's own settings (its webhook secret)."""
        return f"{self.prefix}:tenant:{tenant}"

    def usage(self, tenant: str, period: str) -> str:
        """Counter of jobs a tenant submitted in one billing period ('2025-01')."""
        return f"{self.prefix}:usage:{tenant}:{period}"

    def rate_bucket(self, key_id: str) -> str:
        """Token bucket of one API key's request rate."""
        return f"{self.prefix}:rate:{key_id}"

    def signin_bucket(self, address: str) -> str:
        """Token bucket of the dashboard's sign-in attempts from one client address."""
        return f"{self.prefix}:rate:signin:{address}"

    def blob_owner(self, blob_id: str) -> str:
        """Hash naming who owns a blob (tenant, job) and its content type."""
        return f"{self.prefix}:blob:{blob_id}"

    @property
    def blob_expiry(self) -> str:
        """Zset 'ref<TAB>job id' (no job: an upload) -> ms when the cleanup may delete the blob."""
        return f"{self.prefix}:blobs:expiring"

    # -- maintenance ------------------------------------------------------------------------

    def maintenance_slot(self, name: str, slot_ms: int) -> str:
        """SET NX by the one worker that runs maintenance job ``name`` for one scheduled slot."""
        return f"{self.prefix}:maint:{name}:{slot_ms}"

    # -- metrics (cluster-wide, read by GET /metrics) --------------------------------------

    @property
    def submitted_counts(self) -> str:
        """Hash 'plan<TAB>task' -> jobs created (counted by create_job.lua)."""
        return f"{self.prefix}:metrics:submitted"

    @property
    def completed_counts(self) -> str:
        """Hash 'plan<TAB>status' -> jobs that reached that terminal status (transition.lua)."""
        return f"{self.prefix}:metrics:completed"

    @property
    def duration_counts(self) -> str:
        """Hash 'task<TAB>le' / 'task<TAB>sum' / 'task<TAB>count': the attempt-duration
        histogram, added to by each worker's heartbeat."""
        return f"{self.prefix}:metrics:durations"

    def minute_figures(self, minute: int) -> str:
        """Hash of one minute (since the epoch): 'plan<TAB>status' -> jobs ended and
        'run<TAB>bucket' -> run times, added to by each worker's heartbeat (the dashboard)."""
        return f"{self.prefix}:metrics:minute:{minute}"


def arq_job(job_id: str) -> str:
    return job_key_prefix + job_id


def arq_in_progress(job_id: str) -> str:
    return in_progress_key_prefix + job_id


def arq_retry(job_id: str) -> str:
    """arq's try counter of a job (INCR at every pickup)."""
    return retry_key_prefix + job_id


def arq_result(job_id: str) -> str:
    """arq's result of a job that ended (read by arq's ``Job(id).result()``/``info()``)."""
    return result_key_prefix + job_id


ARQ_ABORT = abort_jobs_ss
