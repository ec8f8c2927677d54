"""All configuration, from ``JOBRUNNER_*`` environment variables or a ``.env`` file.

Only entry points (the CLI, the arq WorkerSettings factory, an embedding app) build a
``Settings``; everything else receives the values it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobrunner.domain.retry import RetryPolicy
from jobrunner.domain.shares import DEFAULT_SHARES, PLANS


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
        description="Child processes one large PDF is split across: 0 = all the pool has.",
    )
    connector_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    connector_timeout_seconds: float = Field(default=120.0, gt=0)
    connector_allow_private: bool = Field(
        default=False, description="Let sync_connector reach private/loopback addresses."
    )
    tasks: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Task lists to load, as 'package.module:NAME' (a Task or a list)."
    )
    log_json: bool = False
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

    @field_validator("plans", "worker_queues", "tasks", mode="before")
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
