"""The OpenAPI document is valid 3.1, generated from the routes and the tasks; /docs is local."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from jobrunner.api.operations import handlers_of, operation_of


async def test_the_document_is_valid_openapi_3_1(client: httpx.AsyncClient) -> None:
    reply = await client.get("/openapi.json")
    assert reply.status_code == 200
    spec = reply.json()
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


async def test_every_route_is_documented(client: httpx.AsyncClient, app: Starlette) -> None:
    spec = (await client.get("/openapi.json")).json()
    for entry in app.routes:
        if not isinstance(entry, Route):
            continue
        path = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", entry.path)
        for method, handler in handlers_of(entry.endpoint, entry.methods).items():
            if method != "HEAD" and operation_of(handler) is not None:
                assert method.lower() in spec["paths"][path], (method, path)
    submit = spec["paths"]["/api/v1/jobs"]["post"]
    assert {"202", "200", "401", "403", "413", "422", "429"} <= set(submit["responses"])
    assert submit["responses"]["422"]["content"]["application/problem+json"]


async def test_each_task_is_a_variant_with_its_params_model(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/api/v1/jobs"]["post"]["requestBody"]["content"]
    variants = body["application/json"]["schema"]["oneOf"]
    by_task = {v["properties"]["task"]["const"]: v for v in variants}
    assert {"validate_csv", "process_pdf", "demo.echo"} <= set(by_task)
    ref = by_task["validate_csv"]["properties"]["params"]["$ref"]
    params = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "input_uri" in params["properties"] and "auto_fix" in params["properties"]


async def test_docs_are_served_from_local_assets_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/api/v1/jobs" in html and "Submit a job" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external host"
    css = await client.get("/docs/docs.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
