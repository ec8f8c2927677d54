"""The edge model for enqueueing: every option validated before anything touches Redis.

Bounds that depend on settings (how far ahead, how long a ttl or timeout, how many tries) are
checked by admission; here is what holds everywhere: finite numbers, and params that are JSON as
written (no NaN or infinities, which JSON cannot carry, and at most MAX_PARAMS_DEPTH levels).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from jobrunner.errors import InvalidInputError, InvalidParamsError

NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
MAX_PARAMS_DEPTH = 64  # levels of nested objects and arrays, the params object being level 1
_PARAMS_SHAPE = "params_shape"


class EnqueueRequest(BaseModel):
    """One job to enqueue. ``plan`` picks the queue; ``priority`` orders jobs within it."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict)  # a pydantic model is dumped to JSON
    tenant: str = Field(default="default", pattern=NAME_PATTERN)
    plan: str | None = Field(default=None, pattern=NAME_PATTERN)
    priority: int = Field(default=0, ge=0, le=9)
    idempotency_key: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$"
    )
    correlation_id: str | None = Field(default=None, max_length=200)
    defer_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    run_at: datetime | None = None
    ttl_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    timeout_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_tries: int | None = Field(default=None, ge=1)
    callback_url: str | None = Field(
        default=None, min_length=1, max_length=2048, pattern=r"^https?://[^\s]+$"
    )
    retry_of: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("params", mode="before")
    @classmethod
    def _params_are_json(cls, value: Any) -> Any:
        model = value if isinstance(value, BaseModel) else None
        problems = params_problems(model.model_dump() if model else value)
        if problems:
            shown = "; ".join(f"{loc}: {msg}" for loc, msg in problems)
            raise PydanticCustomError(
                _PARAMS_SHAPE, "{shown}", {"shown": shown, "problems": problems}
            )
        return model.model_dump(mode="json") if model else value

    @model_validator(mode="after")
    def _one_schedule(self) -> EnqueueRequest:
        if self.defer_seconds is not None and self.run_at is not None:
            raise ValueError("give either defer_seconds or run_at, not both")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ValueError("run_at must carry a timezone")
        return self


def params_problems(value: Any) -> list[tuple[str, str]]:
    """Where ``value`` is not faithful JSON: (path, why) for each NaN or infinity, or one entry
    when it nests deeper than MAX_PARAMS_DEPTH. Iterative: any depth is safe to look at."""
    problems: list[tuple[str, str]] = []
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack and len(problems) < 20:
        item, depth, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            problems.append((path or "(root)", f"{item} is not a JSON number"))
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_PARAMS_DEPTH:
                where = path if len(path) <= 60 else path[:57] + "..."
                return [(where, f"nested deeper than {MAX_PARAMS_DEPTH} levels")]
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((v, depth + 1, f"{path}.{k}" if path else str(k)) for k, v in pairs)
    return sorted(problems)


def parse_request(data: EnqueueRequest | dict[str, Any]) -> EnqueueRequest:
    if isinstance(data, EnqueueRequest):
        return data
    try:
        return EnqueueRequest.model_validate(data)
    except ValidationError as exc:
        raise _input_error(exc, str(data.get("task", ""))) from exc


def _input_error(exc: ValidationError, task: str) -> InvalidInputError:
    """Params that are not JSON are invalid params (as the task's model would say); any other
    problem is an invalid request."""
    found = exc.errors(include_url=False)
    if all(e["type"] == _PARAMS_SHAPE for e in found):
        problems = [p for e in found for p in (e.get("ctx") or {}).get("problems", [])]
        return InvalidParamsError(task, [{"loc": loc, "msg": msg} for loc, msg in problems])
    errors = [
        {"loc": ".".join(str(p) for p in e["loc"]) or "(root)", "msg": e["msg"]} for e in found
    ]
    return InvalidInputError(
        "invalid enqueue request: " + "; ".join(f"{e['loc']}: {e['msg']}" for e in errors),
        errors=errors,
    )
