"""Reading request bodies at the edge: size limits while reading, JSON, pydantic validation.

A body larger than the limit is refused as soon as its declared length or the bytes read so
far pass it (413), malformed JSON is 400, a value the model refuses is 422 with ``errors``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from jobrunner.api.problems import Problem

__all__ = ["body_stream", "check_declared_length", "parse_model", "read_json", "too_large"]

M = TypeVar("M", bound=BaseModel)


def too_large(limit: int, what: str = "request body") -> Problem:
    return Problem(413, "content_too_large", f"the {what} is over {limit} bytes", limit=limit)


def check_declared_length(request: Request, limit: int, what: str = "request body") -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, what)


async def body_stream(
    request: Request, limit: int, what: str = "request body"
) -> AsyncIterator[bytes]:
    """The body in the pieces the server hands over, refused (413) once past ``limit``."""
    check_declared_length(request, limit, what)
    seen = 0
    async for piece in request.stream():
        seen += len(piece)
        if seen > limit:
            raise too_large(limit, what)
        if piece:
            yield piece


async def read_json(request: Request, limit: int, *, optional: bool = False) -> Any:
    """The JSON body (at most ``limit`` bytes); ``optional``: None for an empty body."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        raise Problem(415, "unsupported_media_type", f"send application/json, not {media}")
    raw = b"".join([piece async for piece in body_stream(request, limit)])
    if optional and not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc


def validation_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        out.append({"loc": ".".join(p for p in (prefix, loc) if p) or "(root)", "msg": e["msg"]})
    return out


def parse_model(model: type[M], data: Any, *, prefix: str = "") -> M:
    """``data`` validated by ``model``, or 422 listing each field's path and message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors(exc, prefix)
        detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
        raise Problem(422, "invalid_request", detail, errors=errors) from exc
