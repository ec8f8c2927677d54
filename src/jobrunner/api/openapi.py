"""The OpenAPI 3.1 document, generated from the app's routes (their ``@operation``s) and the
registered tasks' params models; served at ``/openapi.json``.

Models become components (``#/components/schemas/<Name>``); each task's params model becomes
``params.<task>``, and a job submission is a ``oneOf`` with one variant per task, so the
document says exactly which params each task takes.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from jobrunner.api.models import JobSubmission
from jobrunner.api.openapi_parts import Components, error_responses, security_of
from jobrunner.api.operations import (
    Operation,
    Reply,
    handlers_of,
    operation,
    operation_of,
    route,
)
from jobrunner.api.services import services
from jobrunner.registry import Registry

__all__ = ["build_openapi", "multipart_submission_schema", "routes", "submission_schema"]

_CONVERTOR = re.compile(r"{(\w+)(:\w+)?}")
_OPTIONS = {k: v for k, v in JobSubmission.model_fields.items() if k not in ("task", "params")}


def _options_schema() -> dict[str, Any]:
    """The submission's fields besides task and params (the same for every task)."""
    schema = JobSubmission.model_json_schema()
    return {k: v for k, v in schema["properties"].items() if k in _OPTIONS}


def submission_schema(registry: Registry, components: Components) -> dict[str, Any]:
    """A job submission: one variant per task, each naming its params model."""
    options = _options_schema()
    variants = []
    for task in sorted(registry, key=lambda t: t.name):
        params_ref = components.task_params(task.name, task.params_model)
        variants.append(
            {
                "type": "object",
                "title": task.name,
                "properties": {"task": {"const": task.name}, "params": params_ref, **options},
                "required": ["task"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": variants} if variants else {"type": "object"}


def multipart_submission_schema(registry: Registry, components: Components) -> dict[str, Any]:
    """The multipart form: the same fields as text, ``params`` as JSON text, one file."""
    options = _options_schema()
    return {
        "type": "object",
        "properties": {
            "task": {"type": "string", "enum": registry.names()},
            "params": {"type": "string", "description": "The task's params as JSON text."},
            "file": {"type": "string", "format": "binary"},
            **options,
        },
        "required": ["task"],
    }


def _parameters(path: str, op: Operation, components: Components) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name, _ in _CONVERTOR.findall(path)
    ]
    if op.query is not None:
        for name, prop in components.fields(op.query).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop})
    for name, description in op.headers.items():
        param = {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
        params.append({**param, "description": description})
    return params


def _body(op: Operation, registry: Registry, components: Components) -> dict[str, Any] | None:
    if op.body is None:
        return None
    content: dict[str, Any] = {}
    for media, source in op.body.content.items():
        schema: dict[str, Any]
        if isinstance(source, dict):
            schema = dict(source)
        elif isinstance(source, type):
            schema = components.model(source, mode="validation")
        else:
            schema = source(registry, components)
        content[media] = {"schema": schema}
    return {"required": op.body.required, "content": content}


def _reply(reply: Reply, components: Components, auth: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.model is not None or reply.schema is not None:
        schema = components.model(reply.model) if reply.model is not None else reply.schema
        out["content"] = {reply.media_type: {"schema": schema}}
    names = ["X-Correlation-Id", *reply.headers]
    if auth == "tenant":
        names += ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
    out["headers"] = {n: {"$ref": f"#/components/headers/{n}"} for n in names}
    return out


def _operation(
    path: str, name: str, op: Operation, registry: Registry, components: Components
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": name,
        "summary": op.summary,
        "tags": [op.tag],
        "security": security_of(op.auth),
        "parameters": _parameters(path, op, components),
    }
    if op.description:
        spec["description"] = op.description
    body = _body(op, registry, components)
    if body is not None:
        spec["requestBody"] = body
    replies = {str(s): _reply(r, components, op.auth) for s, r in op.responses.items()}
    spec["responses"] = {**error_responses(op, path, components), **replies}
    return spec


def build_openapi(routes: list[BaseRoute], registry: Registry) -> dict[str, Any]:
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    for entry in routes:
        if not isinstance(entry, Route):
            continue
        path = _CONVERTOR.sub(r"{\1}", entry.path)
        for method, handler in handlers_of(entry.endpoint, entry.methods).items():
            op = operation_of(handler)
            if op is None or method == "HEAD":
                continue
            name = handler.__name__
            paths.setdefault(path, {})[method.lower()] = _operation(
                entry.path, name, op, registry, components
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobrunner",
            "version": _version(),
            "description": "Jobs on arq and Redis over HTTP. Errors are application/problem+json "
            "(RFC 9457); times are ISO 8601 UTC ending in Z.",
        },
        "paths": paths,
        "components": components.document(),
    }


def _version() -> str:
    try:
        return version("jobrunner")
    except PackageNotFoundError:
        return "0"


@operation(
    "This document",
    tag="meta",
    auth="none",
    responses={200: Reply("OpenAPI 3.1", schema={"type": "object"})},
)
async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_of(request))


def openapi_of(request: Request) -> dict[str, Any]:
    """The app's document, built once (routes and tasks do not change while it runs)."""
    state = request.app.state
    cached: dict[str, Any] | None = getattr(state, "openapi", None)
    if cached is None:
        cached = build_openapi(request.app.routes, services(request).registry)
        state.openapi = cached
    return cached


routes: list[BaseRoute] = [route("/openapi.json", GET=openapi_json)]
