"""Download one URL to a file, refusing private targets at every hop (SSRF-safe fetch)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO, NoReturn

import httpx
from pydantic import BaseModel

from jobrunner.errors import PermanentError, TransientError
from jobrunner.pipelines.urlcheck import UrlTarget, parse_url
from jobrunner.tasks.outbound import pinned_request, resolve_checked

__all__ = ["MAX_REDIRECTS", "FetchResult", "fetch_to_file"]

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_4XX = frozenset({408, 429})  # the server asks us to come back later
_FLUSH_BYTES = 1 << 20  # write in ~1 MiB batches: few thread hops, bounded memory
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class FetchResult(BaseModel):
    """What was downloaded: size in bytes, the server's content type, the URL after redirects."""

    bytes: int
    content_type: str | None
    final_url: str


async def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool,
    headers: dict[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FetchResult:
    """GET ``url`` into ``dest``, following at most 5 redirects, each hop checked first.

    ``timeout`` bounds the whole fetch. Errors: PermanentError ``url_scheme_not_allowed``,
    ``url_target_not_allowed``, ``fetch_too_large``, ``fetch_http_error`` (4xx),
    ``fetch_too_many_redirects``; TransientError ``fetch_timeout``, ``fetch_http_error``
    (5xx, 408, 429), ``fetch_network_error``, ``fetch_dns_error``.
    """
    parse_url(url)  # refuse a bad scheme before any network activity
    try:
        async with (
            asyncio.timeout(timeout),
            # trust_env=False: a proxy from the environment would make the address check moot.
            httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client,
        ):
            return await _follow(client, url, dest, max_bytes, allow_private, headers or {})
    except (TimeoutError, httpx.TimeoutException) as exc:
        msg = f"fetching {url} took longer than {timeout}s"
        raise TransientError(msg, code="fetch_timeout") from exc
    except httpx.DecodingError as exc:
        msg = f"cannot decode the body of {url}: {exc}"
        raise PermanentError(msg, code="fetch_bad_body") from exc
    except httpx.RequestError as exc:
        msg = f"network error fetching {url}: {exc}"
        raise TransientError(msg, code="fetch_network_error") from exc


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    max_bytes: int,
    allow_private: bool,
    headers: dict[str, str],
) -> FetchResult:
    first = parse_url(url)
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = parse_url(current)
        address = await resolve_checked(target, allow_private)
        request = pinned_request(client, target, address, _hop_headers(headers, first, target))
        response = await client.send(request, stream=True)
        try:
            location = _redirect_location(response)
            if location is None:
                _check_status(response, current)
                size = await _save_body(response, dest, max_bytes)
                content_type = response.headers.get("content-type")
                return FetchResult(bytes=size, content_type=content_type, final_url=current)
        finally:
            await response.aclose()
        current = str(httpx.URL(current).join(location))
    msg = f"more than {MAX_REDIRECTS} redirects from {url}"
    raise PermanentError(msg, code="fetch_too_many_redirects")


def _hop_headers(headers: dict[str, str], first: UrlTarget, target: UrlTarget) -> dict[str, str]:
    if (first.scheme, first.host, first.port) == (target.scheme, target.host, target.port):
        return headers
    # Credentials meant for the first origin must not leak to wherever it redirects.
    return {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}


def _redirect_location(response: httpx.Response) -> str | None:
    if response.status_code not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("location")
    if not location:
        msg = f"redirect {response.status_code} without a Location header"
        raise PermanentError(msg, code="fetch_http_error", status=response.status_code)
    return str(location)


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    msg = f"GET {url} answered {status} {response.reason_phrase}"
    if status >= 500 or status in _RETRYABLE_4XX:
        raise TransientError(msg, code="fetch_http_error", status=status)
    raise PermanentError(msg, code="fetch_http_error", status=status)


async def _save_body(response: httpx.Response, dest: Path, max_bytes: int) -> int:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        _too_large(max_bytes)
    # Write beside dest and rename at the end, so dest never holds a partial download.
    part = dest.with_name(dest.name + ".part")
    sink = await asyncio.to_thread(part.open, "wb")
    try:
        size = await _copy(response, sink, max_bytes)
    except BaseException:
        await asyncio.to_thread(_discard, sink, part)
        raise
    await asyncio.to_thread(_finish, sink, part, dest)
    return size


async def _copy(response: httpx.Response, sink: BinaryIO, max_bytes: int) -> int:
    size = 0
    buffer = bytearray()
    # aiter_bytes yields decoded bytes, so the limit also holds against compression bombs.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            _too_large(max_bytes)
        buffer += chunk
        if len(buffer) >= _FLUSH_BYTES:
            await asyncio.to_thread(sink.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await asyncio.to_thread(sink.write, bytes(buffer))
    return size


def _too_large(max_bytes: int) -> NoReturn:
    raise PermanentError(
        f"response is larger than the {max_bytes}-byte limit",
        code="fetch_too_large",
        max_bytes=max_bytes,
    )


def _discard(sink: BinaryIO, part: Path) -> None:
    sink.close()
    part.unlink(missing_ok=True)


def _finish(sink: BinaryIO, part: Path, dest: Path) -> None:
    sink.close()
    os.replace(part, dest)
