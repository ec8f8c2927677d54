"""Job records as flat Redis hashes: every value a string, times as epoch milliseconds."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from jobrunner.domain.models import AuditEntry, JobError, JobRecord, ms_to_dt
from jobrunner.errors import RecordCorruptError

_TIME_FIELDS = (
    "created_at",
    "scheduled_at",
    "started_at",
    "finished_at",
    "next_attempt_at",
    "expires_at",
)
_INT_FIELDS = ("attempts", "max_tries", "interruptions", "priority")
# OverflowError/OSError: a time beyond what datetime holds (records written before bounds existed)
_UNDECODABLE = (KeyError, ValueError, UnicodeDecodeError, ValidationError, OverflowError, OSError)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def encode_fields(fields: Mapping[str, Any]) -> dict[str, str | None]:
    """Python values to hash strings; ``None`` means delete the field."""
    out: dict[str, str | None] = {}
    for name, value in fields.items():
        if value is None:
            out[name] = None
        elif isinstance(value, bool):
            out[name] = "1" if value else "0"
        elif isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float):
            out[name] = repr(value)
        elif isinstance(value, JobError):
            out[name] = value.model_dump_json()
        else:
            out[name] = dumps(value)
    return out


def _text(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def decode_record(raw: Mapping[bytes, bytes], job_id: str) -> JobRecord:
    """A hash from HGETALL to a record; a hash that does not decode raises RecordCorruptError."""
    try:
        h = _text(raw)
        data: dict[str, Any] = {k: v for k, v in h.items() if k not in ("updated_at",)}
        for name in _TIME_FIELDS:
            data[name] = ms_to_dt(float(h[name])) if name in h else None
        for name in _INT_FIELDS:
            if name in h:
                data[name] = int(float(h[name]))
        data["params"] = json.loads(h.get("params", "{}"))
        data["error"] = JobError.model_validate_json(h["error"]) if "error" in h else None
        data["cancel_requested"] = h.get("cancel_requested") == "1"
        data["progress"] = float(h.get("progress", "0"))
        data["timeout_seconds"] = float(h["timeout_seconds"])
        return JobRecord.model_validate(data)
    except _UNDECODABLE as exc:
        raise RecordCorruptError(
            f"job record {job_id} does not decode: {exc}", job_id=job_id
        ) from exc


def pairs_to_hash(flat: list[Any]) -> dict[bytes, bytes]:
    """A flat ``[k1, v1, k2, v2, ...]`` reply (as Lua returns HGETALL) to a mapping."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def audit_json(entry: AuditEntry) -> str:
    return entry.model_dump_json(exclude_none=True)


def decode_audit(raw: list[bytes]) -> list[AuditEntry]:
    return [AuditEntry.model_validate_json(item) for item in raw]
