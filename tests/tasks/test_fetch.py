"""fetch_to_file against a real HTTP server on 127.0.0.1 (asyncio.start_server, minimal HTTP)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from jobrunner.errors import PermanentError, TransientError
from jobrunner.tasks.fetch import fetch_to_file

BIG = 100_000
PUBLIC_NAME = "public.example"  # made to resolve to a public address by the fake resolver
PUBLIC_IP = "93.184.216.34"


@dataclass
class Server:
    """A tiny HTTP/1.0-style server: one request per connection, then close."""

    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            host = next((ln[5:].strip() for ln in lines if ln.lower().startswith("host:")), "")
            self.seen.append((target, host))
            await self.respond(target, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (size limit, timeout): nothing to answer
        finally:
            writer.close()

    async def respond(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
        if path == "/ok":
            await _send(writer, 200, b"hello world", {"Content-Type": "text/plain"})
        elif path == "/big":
            await _send(writer, 200, b"x" * BIG, {"Content-Type": "application/octet-stream"})
        elif path == "/big-undeclared":  # no Content-Length: the body ends when we close
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            for _ in range(BIG // 1000):
                writer.write(b"y" * 1000)
                await writer.drain()
        elif path == "/redirect":
            await _send(writer, 302, b"", {"Location": query["to"][0]})
        elif path == "/loop":
            await _send(writer, 302, b"", {"Location": "/loop"})
        elif path == "/boom":
            await _send(writer, 503, b"try later")
        elif path == "/slow":  # never answers; returns once the client hangs up
            await reader.read()
        else:
            await _send(writer, 404, b"not here")


async def _send(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield srv


class ToLocal(httpx.AsyncBaseTransport):
    """Sends every request to the local server, remembering the URL the client asked for."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(str(request.url))
        request.url = request.url.copy_with(host="127.0.0.1", port=self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the running loop's getaddrinfo answers itself; others go to the real resolver."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    table: dict[str, list[str]] = {PUBLIC_NAME: [PUBLIC_IP]}

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in table:
            return await real(host, port, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in table[host]]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return table


async def _fetch(url: str, dest: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("max_bytes", 1_000_000)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("allow_private", False)
    return await fetch_to_file(url, dest, **kwargs)


async def test_loopback_refused_by_default(server: Server, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _fetch(server.url("/ok"), tmp_path / "out")
    assert info.value.code == "url_target_not_allowed"
    assert info.value.details["kind"] == "loopback"
    assert server.seen == []  # refused before connecting
    assert not (tmp_path / "out").exists()


async def test_localhost_name_refused_too(server: Server, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="localhost resolves to") as info:
        await _fetch(f"http://localhost:{server.port}/ok", tmp_path / "out")
    assert info.value.code == "url_target_not_allowed"
    assert server.seen == []


async def test_loopback_allowed_when_private_allowed(server: Server, tmp_path: Path) -> None:
    result = await _fetch(server.url("/ok"), tmp_path / "out", allow_private=True)
    assert (tmp_path / "out").read_bytes() == b"hello world"
    assert result.bytes == 11
    assert result.content_type == "text/plain"
    assert result.final_url == server.url("/ok")


@pytest.mark.parametrize("path", ["/big", "/big-undeclared"])
async def test_size_limit(path: str, server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    with pytest.raises(PermanentError) as info:
        await _fetch(server.url(path), dest, allow_private=True, max_bytes=BIG - 1)
    assert info.value.code == "fetch_too_large"
    assert os.listdir(tmp_path) == []  # no partial file left behind
    exact = await _fetch(server.url(path), dest, allow_private=True, max_bytes=BIG)
    assert exact.bytes == dest.stat().st_size == BIG


async def test_redirect_to_loopback_refused(
    server: Server, fake_dns: dict[str, list[str]], tmp_path: Path
) -> None:
    transport = ToLocal(server.port)
    url = f"http://{PUBLIC_NAME}:{server.port}/redirect?to={server.url('/ok')}"
    with pytest.raises(PermanentError) as info:
        await _fetch(url, tmp_path / "out", transport=transport)
    assert info.value.code == "url_target_not_allowed"
    assert info.value.details["address"] == "127.0.0.1"
    assert [path for path, _ in server.seen] == [f"/redirect?to={server.url('/ok')}"]


async def test_connection_pinned_to_checked_address(
    server: Server, fake_dns: dict[str, list[str]], tmp_path: Path
) -> None:
    transport = ToLocal(server.port)
    result = await _fetch(
        f"http://{PUBLIC_NAME}:{server.port}/ok", tmp_path / "out", transport=transport
    )
    assert transport.asked == [f"http://{PUBLIC_IP}:{server.port}/ok"]
    assert server.seen == [("/ok", f"{PUBLIC_NAME}:{server.port}")]
    assert result.final_url == f"http://{PUBLIC_NAME}:{server.port}/ok"


async def test_any_private_address_refuses_the_host(
    fake_dns: dict[str, list[str]], tmp_path: Path
) -> None:
    fake_dns["mixed.example"] = [PUBLIC_IP, "10.0.0.7"]
    with pytest.raises(PermanentError) as info:
        await _fetch("http://mixed.example/", tmp_path / "out")
    assert info.value.details["address"] == "10.0.0.7"


async def test_redirects_followed_and_rechecked(server: Server, tmp_path: Path) -> None:
    url = server.url("/redirect?to=/ok")
    result = await _fetch(url, tmp_path / "out", allow_private=True)
    assert result.final_url == server.url("/ok")
    assert [p for p, _ in server.seen] == ["/redirect?to=/ok", "/ok"]


async def test_redirect_loop_stops_after_five(server: Server, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _fetch(server.url("/loop"), tmp_path / "out", allow_private=True)
    assert info.value.code == "fetch_too_many_redirects"
    assert len(server.seen) == 6  # the first request and five redirects


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://a/"])
async def test_non_http_scheme_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _fetch(url, tmp_path / "out", allow_private=True)
    assert info.value.code == "url_scheme_not_allowed"


async def test_redirect_to_other_scheme_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _fetch(
            server.url("/redirect?to=file:///etc/passwd"), tmp_path / "out", allow_private=True
        )
    assert info.value.code == "url_scheme_not_allowed"


async def test_404_is_permanent(server: Server, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _fetch(server.url("/nothing"), tmp_path / "out", allow_private=True)
    assert info.value.code == "fetch_http_error"
    assert info.value.details["status"] == 404
    assert not (tmp_path / "out").exists()


async def test_5xx_is_transient(server: Server, tmp_path: Path) -> None:
    with pytest.raises(TransientError) as info:
        await _fetch(server.url("/boom"), tmp_path / "out", allow_private=True)
    assert info.value.code == "fetch_http_error"
    assert info.value.retryable


async def test_timeout_is_transient(server: Server, tmp_path: Path) -> None:
    with pytest.raises(TransientError) as info:
        await _fetch(server.url("/slow"), tmp_path / "out", allow_private=True, timeout=0.3)
    assert info.value.code == "fetch_timeout"


async def test_connection_refused_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(TransientError) as info:
            await _fetch(f"http://127.0.0.1:{port}/", tmp_path / "out", allow_private=True)
    assert info.value.code == "fetch_network_error"


async def test_unknown_host_is_permanent(tmp_path: Path) -> None:
    with pytest.raises((PermanentError, TransientError)) as info:
        await _fetch("http://no-such-host.invalid/", tmp_path / "out")
    assert info.value.code in {"fetch_unknown_host", "fetch_dns_error"}
