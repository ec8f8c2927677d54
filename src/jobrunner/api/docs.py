"""``/docs``: a readable page rendered on the server from the app's own OpenAPI document, with
its stylesheet served from the package (no CDN, no script, no external host)."""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from jobrunner.api.openapi import openapi_of
from jobrunner.api.operations import route

__all__ = ["render_docs", "routes"]

_METHODS = ("get", "post", "put", "patch", "delete")


def _stylesheet() -> str:
    return resources.files("jobrunner.api").joinpath("static/docs.css").read_text()


def _json(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False))


def _parameters(op: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td>"
        f"<td><code>{escape(json.dumps(p.get('schema', {})))}</code></td>"
        f"<td>{escape(p.get('description', ''))}</td></tr>"
        for p in op.get("parameters", [])
    )
    if not rows:
        return ""
    head = "<tr><th>name</th><th>in</th><th>schema</th><th></th></tr>"
    return f"<h4>Parameters</h4><table>{head}{rows}</table>"


def _body(op: dict[str, Any]) -> str:
    body = op.get("requestBody")
    if not body:
        return ""
    parts = "".join(
        f"<details><summary><code>{escape(media)}</code></summary>"
        f"<pre>{_json(content.get('schema', {}))}</pre></details>"
        for media, content in body["content"].items()
    )
    return f"<h4>Request body</h4>{parts}"


def _responses(op: dict[str, Any]) -> str:
    rows = []
    for status, reply in sorted(op.get("responses", {}).items()):
        media = ", ".join(reply.get("content", {})) or "(no body)"
        rows.append(
            f"<tr><td><code>{status}</code></td><td>{escape(reply['description'])}</td>"
            f"<td><code>{escape(media)}</code></td></tr>"
        )
    return f"<h4>Responses</h4><table>{''.join(rows)}</table>"


def _curl(method: str, path: str, op: dict[str, Any]) -> str:
    auth = ' -H "Authorization: Bearer $KEY"' if op.get("security") else ""
    verb = "" if method == "get" else f" -X {method.upper()}"
    return f"<pre>curl{verb}{auth} http://HOST{escape(path)}</pre>"


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    anchor = escape(op.get("operationId", f"{method}-{path}"))
    auth = "API key" if op.get("security") else "no auth"
    if op.get("security") and "adminToken" in op["security"][0]:
        auth = "admin token"
    return (
        f'<section class="op" id="{anchor}"><h2><span class="method {method}">{method.upper()}'
        f'</span>{escape(path)}</h2><div class="summary">{escape(op.get("summary", ""))}</div>'
        f'<p>{escape(op.get("description", ""))} <span class="muted">({auth})</span></p>'
        f"{_curl(method, path, op)}{_parameters(op)}{_body(op)}{_responses(op)}</section>"
    )


def render_docs(spec: dict[str, Any]) -> str:
    nav: dict[str, list[str]] = {}
    body: list[str] = []
    for path, item in spec["paths"].items():
        for method in (m for m in _METHODS if m in item):
            op = item[method]
            tag = (op.get("tags") or ["other"])[0]
            anchor = escape(op.get("operationId", ""))
            nav.setdefault(tag, []).append(f'<a href="#{anchor}">{escape(op["summary"])}</a>')
            body.append(_operation(method, path, op))
    links = "".join(f"<h3>{escape(tag)}</h3>{''.join(items)}" for tag, items in nav.items())
    schemas = f"<h2>Schemas</h2><pre>{_json(spec['components']['schemas'])}</pre>"
    info = spec["info"]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(info['title'])} API</title>"
        '<link rel="stylesheet" href="/docs/docs.css"></head><body>'
        f'<header><h1>{escape(info["title"])} API <span class="muted">{escape(info["version"])}'
        f"</span></h1><p>{escape(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>'
        f'</header><div class="layout"><nav>{links}</nav><main>{"".join(body)}{schemas}'
        "</main></div></body></html>"
    )


async def docs_page(request: Request) -> Response:
    return HTMLResponse(render_docs(openapi_of(request)))


async def docs_css(request: Request) -> Response:
    css = getattr(request.app.state, "docs_css", None) or _stylesheet()
    request.app.state.docs_css = css
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


routes: list[BaseRoute] = [route("/docs", GET=docs_page), route("/docs/docs.css", GET=docs_css)]
