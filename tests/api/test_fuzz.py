"""Fuzz the API from its own OpenAPI document with schemathesis (a few examples per operation):
no 5xx, every error is problem+json, responses match the document's statuses, media types,
headers and schemas."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jobrunner.api import create_app
from jobrunner.api.server import embedded_server
from jobrunner.embedded import free_port
from tests.api.conftest import ADMIN_TOKEN, api_settings

Fuzzed = tuple[str, str]  # (base URL, a tenant key)


@pytest.fixture(scope="module")
def fuzzed_api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    """A real uvicorn in a thread of its own (schemathesis calls are synchronous)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    limits = {"plan_rate_limits": {"pro": 100_000}, "plan_quotas": {"pro": 1_000_000}}
    app = create_app(api_settings(redis_url, prefix, tmp_path_factory.mktemp("fuzz"), **limits))
    port = free_port()
    server = embedded_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    made = httpx.post(
        f"{url}/api/v1/admin/keys",
        json={"tenant": "fuzz", "plan": "pro"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    try:
        yield url, made.json()["api_key"]
    finally:
        server.should_exit = True
        thread.join(15)
        _drop_prefix(redis_url, prefix)


def _drop_prefix(redis_url: str, prefix: str) -> None:
    client = sync_redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_api: Fuzzed) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_api[0]}/openapi.json")


def problem_json(ctx: Any, response: Any, case: Case) -> bool | None:
    """Every 4xx/5xx is application/problem+json with an integer status equal to the code."""
    if response.status_code < 400:
        return None
    assert response.headers["content-type"][0] == "application/problem+json"
    body = response.json()
    assert body["status"] == response.status_code and body["type"].startswith("/problems/")
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return None


def test_the_api_holds_to_its_own_document(api_schema: Any, fuzzed_api: Fuzzed) -> None:
    """Each operation in turn (schemathesis' pytest plugin does not run on pytest 9.2, so the
    operations' hypothesis strategies are driven here)."""
    url, key = fuzzed_api
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        token = ADMIN_TOKEN if operation.path.startswith("/api/v1/admin") else key
        fuzz(operation, url, token)()


def fuzz(operation: Any, url: str, token: str) -> Callable[[], None]:
    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Case) -> None:
        case.call_and_validate(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=10
        )

    return run  # type: ignore[no-any-return]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_json,
]
