"""JSON for arq payloads and results: nothing stored in Redis is ever executable (no pickle)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any


class RemoteError(Exception):
    """An exception that crossed Redis as data: its type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


def _default(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {"__error__": type(value).__name__, "message": str(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _hook(obj: dict[str, Any]) -> Any:
    if "__error__" in obj and len(obj) == 2:
        return RemoteError(str(obj["__error__"]), str(obj.get("message", "")))
    return obj


def serialize(value: dict[str, Any]) -> bytes:
    return json.dumps(value, default=_default, separators=(",", ":")).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw, object_hook=_hook)
    if not isinstance(value, dict):
        raise ValueError("an arq payload must be a JSON object")
    return value
