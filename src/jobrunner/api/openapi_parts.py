"""Pieces of the OpenAPI document: components (models hoisted from pydantic's ``$defs``), the
problem schema, shared headers, security schemes and the errors every kind of route answers."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel

from jobrunner.api.operations import Auth, Operation

__all__ = ["Components", "error_responses", "security_of"]

Mode = Literal["validation", "serialization"]

PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "/problems/<stable code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
            },
        },
        "job_status": {"type": "string"},
        "tasks": {"type": "array", "items": {"type": "string"}},
    },
}

_INT = {"type": "integer"}
HEADERS: dict[str, dict[str, Any]] = {
    "X-Correlation-Id": {
        "description": "The request's correlation id",
        "schema": {"type": "string"},
    },
    "Location": {"description": "URL of the resource", "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "true on a replay", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait", "schema": _INT},
    "RateLimit-Limit": {"description": "Requests the bucket holds", "schema": _INT},
    "RateLimit-Remaining": {"description": "Requests left now", "schema": _INT},
    "RateLimit-Reset": {"description": "Seconds until the bucket is full", "schema": _INT},
    "WWW-Authenticate": {"description": "Bearer challenge", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "attachment; filename", "schema": {"type": "string"}},
    "Content-Length": {"description": "Size in bytes", "schema": _INT},
}

SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "A tenant's API key"},
    "adminToken": {"type": "http", "scheme": "bearer", "description": "JOBRUNNER_ADMIN_TOKEN"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "JOBRUNNER_METRICS_TOKEN"},
}


def security_of(auth: Auth) -> list[dict[str, list[str]]]:
    options: dict[str, list[dict[str, list[str]]]] = {
        "tenant": [{"apiKey": []}],
        "admin": [{"adminToken": []}],
        "metrics": [{"metricsToken": []}, {}],
        "none": [],
    }
    return options[auth]


class Components:
    """Schemas gathered while the document is built."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {"Problem": PROBLEM}

    def _add(self, name: str, schema: dict[str, Any]) -> str:
        base, n = name, 2
        while name in self.schemas and self.schemas[name] != schema:
            name, n = f"{base}{n}", n + 1
        self.schemas[name] = schema
        return name

    def _hoist(self, schema: dict[str, Any], prefix: str) -> dict[str, Any]:
        for def_name, sub in schema.pop("$defs", {}).items():
            self._add(f"{prefix}{def_name}", sub)
        return schema

    def model(self, model: type[BaseModel], mode: Mode = "serialization") -> dict[str, str]:
        template = "#/components/schemas/{model}"
        schema = self._hoist(model.model_json_schema(ref_template=template, mode=mode), "")
        return {"$ref": f"#/components/schemas/{self._add(model.__name__, schema)}"}

    def fields(self, model: type[BaseModel]) -> dict[str, Any]:
        """A model's properties (query parameters), their ``$defs`` made components."""
        template = "#/components/schemas/{model}"
        schema = self._hoist(model.model_json_schema(ref_template=template), "")
        properties: dict[str, Any] = schema["properties"]
        return properties

    def task_params(self, task: str, model: type[BaseModel]) -> dict[str, str]:
        prefix = f"params.{task}."
        template = f"#/components/schemas/{prefix}{{model}}"
        schema = self._hoist(model.model_json_schema(ref_template=template), prefix)
        return {"$ref": f"#/components/schemas/{self._add(f'params.{task}', schema)}"}

    def document(self) -> dict[str, Any]:
        return {"schemas": self.schemas, "headers": HEADERS, "securitySchemes": SECURITY_SCHEMES}


def _problem(description: str, *headers: str) -> dict[str, Any]:
    names = ["X-Correlation-Id", *headers]
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
        "headers": {n: {"$ref": f"#/components/headers/{n}"} for n in names},
    }


def error_responses(op: Operation, path: str, components: Components) -> dict[str, Any]:
    """The errors a route answers besides its own: auth, limits, validation, Redis."""
    out: dict[str, Any] = {}
    if re.search(r"{\w+", path):
        out["404"] = _problem("No such resource (or another tenant's)")
    if op.body is not None:
        out["400"] = _problem("Malformed body (JSON or multipart)")
        out["413"] = _problem("Body over its size limit")
        out["415"] = _problem("Unsupported content type")
    if op.body is not None or op.query is not None:
        out["422"] = _problem("Invalid input (see errors)")
    if op.auth in ("tenant", "admin", "metrics"):
        out["401"] = _problem("No or bad credentials", "WWW-Authenticate")
    if op.auth in ("tenant", "admin"):
        out["403"] = _problem("Credentials of the wrong kind")
    if op.auth == "tenant":
        out["429"] = _problem(
            "Rate limit or monthly quota exceeded",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        )
    if op.auth != "none":
        out["503"] = _problem("Redis unavailable")
    return out
