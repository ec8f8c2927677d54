"""All configuration, from ``JOBRUNNER_*`` environment variables or a ``.env`` file.

Only entry points (the CLI, the arq WorkerSettings factory, an embedding app) build a
``Settings``; everything else receives the values it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobrunner.domain.retry import RetryPolicy
from jobrunner.domain.shares import DEFAULT_SHARES, PLANS

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
    # comma separated in the environment: JOBRUNNER_WORKER_QUEUES=enterprise,pro
    plans: Annotated[tuple[str, ...], NoDecode] = PLANS
    plan_shares: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SHARES))
    default_plan: str = "free"
    worker_queues: Annotated[tuple[str, ...], NoDecode] = PLANS
    concurrency: int = Field(default=20, ge=1, le=10_000)
    default_timeout_seconds: float = Field(default=300.0, gt=0)
    max_timeout_seconds: float = Field(default=6 * 3600.0, gt=0)
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
        description="Processes reading large PDFs: 0 = min(2, CPUs), 1 = in the worker only.",
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
    blob_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long uploads and outputs stay downloadable."
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
    log_json: bool = False
    log_level: str = "info"

    @field_validator("plans", "worker_queues", "tasks", "cors_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

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
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"
