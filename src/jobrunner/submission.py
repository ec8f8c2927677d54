"""The edge model for enqueueing: every option validated before anything touches Redis."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobrunner.errors import InvalidInputError

NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


class EnqueueRequest(BaseModel):
    """One job to enqueue. ``plan`` picks the queue; ``priority`` orders jobs within it."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)
    tenant: str = Field(default="default", pattern=NAME_PATTERN)
    plan: str | None = Field(default=None, pattern=NAME_PATTERN)
    priority: int = Field(default=0, ge=0, le=9)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$"
    )
    correlation_id: str | None = Field(default=None, max_length=200)
    defer_seconds: float | None = Field(default=None, ge=0, le=366 * 86400)
    run_at: datetime | None = None
    ttl_seconds: float | None = Field(default=None, gt=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_tries: int | None = Field(default=None, ge=1)
    callback_url: str | None = Field(
        default=None, min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$"
    )
    retry_of: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueRequest:
        if self.defer_seconds is not None and self.run_at is not None:
            raise ValueError("give either defer_seconds or run_at, not both")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ValueError("run_at must carry a timezone")
        return self


def parse_request(data: EnqueueRequest | dict[str, Any]) -> EnqueueRequest:
    if isinstance(data, EnqueueRequest):
        return data
    try:
        return EnqueueRequest.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]) or "(root)", "msg": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInputError(
            "invalid enqueue request: " + "; ".join(f"{e['loc']}: {e['msg']}" for e in errors),
            errors=errors,
        ) from exc
