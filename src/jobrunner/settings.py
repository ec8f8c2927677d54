"""All configuration, from ``JOBRUNNER_*`` environment variables or a ``.env`` file.

Only entry points (the CLI, the arq WorkerSettings factory, an embedding app) build a
``Settings``; everything else receives the values it needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobrunner.domain.cron import parse_cron
from jobrunner.domain.retry import RetryPolicy
from jobrunner.domain.shares import DEFAULT_SHARES, PLANS

MIB = 1024 * 1024
DAY = 86400.0
# The furthest any bound below may be set: keeps every timestamp a job can carry (now + defer
# + ttl) far inside what datetime and Redis TTLs can hold.
TEN_YEARS = 3650 * DAY
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
# Per plan: jobs a tenant may submit per calendar month (UTC) and API requests per second.
DEFAULT_MONTHLY_QUOTAS: dict[str, int] = {
    "free": 1_000,
    "pro": 100_000,
    "business": 1_000_000,
    "enterprise": 10_000_000,
}
DEFAULT_RATE_LIMITS: dict[str, float] = {"free": 5, "pro": 50, "business": 200, "enterprise": 1000}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="JOBRUNNER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    redis_url: str | None = Field(
        default=None, description="Redis to use; unset starts an embedded redis-server."
    )
    key_prefix: str = Field(default="jobrunner", pattern=r"^[A-Za-z0-9_.\-]+$")
    data_dir: Path = Field(default=Path(".jobrunner"))
    blob_url: str | None = Field(
        default=None,
        description="Where blobs live: unset or file:// = the data dir, s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+/?$")
    s3_region: str | None = Field(default=None, pattern=r"^[a-z0-9\-]{1,64}$")
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_virtual_hosted_style: bool = False
    s3_part_bytes: int = Field(default=8 * MIB, ge=5 * MIB, le=5 * 1024 * MIB)
    s3_upload_concurrency: int = Field(default=4, ge=1, le=64)
    s3_retry_seconds: float = Field(default=60.0, gt=0, le=600, allow_inf_nan=False)
    blob_cache_max_bytes: int = Field(default=10 * 1024 * MIB, ge=0)
    blob_cache_keep_seconds: float = Field(default=6 * 3600.0, ge=0, allow_inf_nan=False)
    embedded_redis_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the embedded Redis; unset keeps the one stored in the data dir.",
    )
    # comma separated in the environment: JOBRUNNER_WORKER_QUEUES=enterprise,pro
    plans: Annotated[tuple[str, ...], NoDecode] = PLANS
    plan_shares: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SHARES))
    default_plan: str = "free"
    worker_queues: Annotated[tuple[str, ...], NoDecode] = PLANS
    concurrency: int = Field(default=20, ge=1, le=10_000)
    default_timeout_seconds: float = Field(default=300.0, gt=0, le=30 * DAY, allow_inf_nan=False)
    max_timeout_seconds: float = Field(default=6 * 3600.0, gt=0, le=30 * DAY, allow_inf_nan=False)
    max_defer_seconds: float = Field(default=366 * DAY, gt=0, le=TEN_YEARS, allow_inf_nan=False)
    max_ttl_seconds: float = Field(default=30 * DAY, gt=0, le=TEN_YEARS, allow_inf_nan=False)
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_cap_seconds: float = Field(default=600.0, ge=0)
    max_tries: int = Field(default=3, ge=1, le=100)
    result_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    record_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=1)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    job_key_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    max_params_bytes: int = Field(default=1024 * 1024, ge=1)
    inline_result_max_bytes: int = Field(default=64 * 1024, ge=0)
    poll_delay_seconds: float = Field(default=0.5, gt=0, le=60)
    lease_seconds: float = Field(default=15.0, gt=1)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    progress_interval_seconds: float = Field(default=0.25, ge=0)
    max_interruptions: int = Field(default=5, ge=1)
    task_bounce_limit: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Times a worker without a job's task puts it back for one that has it.",
    )
    redis_timeout_seconds: float = Field(default=5.0, gt=0)
    demo_tasks: bool = False
    pipeline_tasks: bool = True
    rulesets_dir: Path | None = Field(default=None, description="Extra CSV rulesets (TOML).")
    allow_file_inputs: bool = Field(
        default=False, description="Let pipeline input_uri be file:// (trusted setups only)."
    )
    pdf_processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Child processes one large PDF is split across: 0 = all the pool has.",
    )
    connector_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    connector_timeout_seconds: float = Field(default=120.0, gt=0)
    connector_allow_private: bool = Field(
        default=False,
        description="Let sync_connector and webhooks reach private/loopback addresses.",
    )
    # -- webhooks (a job's callback_url) and operations ------------------------------------
    webhook_secret: SecretStr | None = Field(
        default=None, description="Signs the callbacks of tenants that have no secret of their own."
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_max_tries: int = Field(default=10, ge=1, le=20)
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, ge=0)
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token GET /metrics wants; unset: /metrics is open."
    )
    tasks: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Task lists to load, as 'package.module:NAME' (a Task or a list)."
    )
    # -- HTTP API -----------------------------------------------------------------------------
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin routes; unset: no admin access."
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="Largest JSON body.")
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1, description="Largest upload.")
    upload_retention_hours: float = Field(
        default=72.0,
        gt=0,
        le=TEN_YEARS / 3600,
        allow_inf_nan=False,
        description="How long an upload is kept; a job's outputs are kept with its result.",
    )
    plan_quotas: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MONTHLY_QUOTAS))
    plan_rate_limits: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # -- dashboard (/dashboard) ---------------------------------------------------------------
    dashboard_secret: SecretStr | None = Field(
        default=None,
        description="Signs dashboard session cookies; unset: derived from the admin token.",
    )
    dashboard_session_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    dashboard_refresh_seconds: float = Field(default=2.0, gt=0, le=60)
    dashboard_signin_rate_per_s: float = Field(default=1.0, gt=0, le=1000)
    # -- maintenance (arq cron on every worker; each run once per schedule) -------------------
    cleanup_cron: str = Field(default="0 2 * * *", description="Expired records, indices, blobs.")
    prune_cron: str = Field(default="*/10 * * * *", description="Index entries of expired jobs.")
    reconcile_cron: str = Field(default="* * * * *", description="Records and arq agree.")
    reset_quotas_cron: str = Field(default="0 0 1 * *", description="Monthly quota counters.")
    maintenance_batch: int = Field(
        default=50, ge=1, le=5000, description="Jobs or blobs one maintenance Redis call handles."
    )
    reconcile_grace_seconds: float = Field(
        default=5.0, ge=0, le=3600, allow_inf_nan=False, description="Younger changes are left."
    )
    log_json: bool | None = Field(
        default=None, description="JSON log lines; unset: JSON unless stderr is a terminal."
    )
    log_level: str = "info"
    # pipelines: the child processes heavy work runs in, their caps, and input bounds
    pipeline_processes: int = Field(
        default=0, ge=0, le=256, description="Pipeline child processes: 0 = min(2, CPUs)."
    )
    pipeline_memory_mb: int = Field(
        default=2048, ge=0, description="Address space one job may add in a child; 0 = no cap."
    )
    pipeline_stop_grace_seconds: float = Field(
        default=5.0, ge=0, description="How long a stopped child may take before it is killed."
    )
    csv_formula_guard: bool = Field(
        default=True, description="Neutralise formula-like cells in every CSV pipelines write."
    )
    input_max_decompressed_bytes: int = Field(default=2 * 1024**3, ge=1)
    csv_max_columns: int = Field(default=2000, ge=1)
    csv_max_line_bytes: int = Field(default=1024**2, ge=1024)
    pdf_max_pages: int = Field(default=10_000, ge=1)
    pdf_max_stream_bytes: int = Field(default=256 * 1024**2, ge=1024)

    @field_validator("plans", "worker_queues", "tasks", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cleanup_cron", "prune_cron", "reconcile_cron", "reset_quotas_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        parse_cron(value)  # ValueError says which field is wrong
        return value

    @field_validator("blob_url")
    @classmethod
    def _blob_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = urlsplit(value)
        if url.scheme == "file" and not url.netloc:
            return value
        if url.scheme == "s3" and _BUCKET.fullmatch(url.netloc):
            return value
        raise ValueError("must be file:// (the data dir), file:///some/dir or s3://bucket/prefix")

    @model_validator(mode="after")
    def _queues_are_plans(self) -> Settings:
        unknown = [q for q in (*self.worker_queues, self.default_plan) if q not in self.plans]
        if unknown:
            raise ValueError(f"unknown plans {unknown}; configured plans: {list(self.plans)}")
        limits = [*self.plan_quotas.values(), *self.plan_rate_limits.values()]
        if any(value <= 0 for value in limits):
            raise ValueError("plan quotas and rate limits must be positive")
        return self

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_tries=self.max_tries,
            base_seconds=self.retry_base_seconds,
            cap_seconds=self.retry_cap_seconds,
        )

    @property
    def upload_retention_seconds(self) -> int:
        return max(1, int(self.upload_retention_hours * 3600))

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def blob_cache_dir(self) -> Path:
        """Local copies of remote (s3://) blobs that pipelines read as files."""
        return self.data_dir / "blob-cache"
