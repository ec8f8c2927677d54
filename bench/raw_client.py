"""A minimal HTTP/1.1 keep-alive client for bench/http_submit.py's ``--client raw``: one
connection per loop, the request bytes built once, the reply read by its Content-Length. It
spends a fraction of httpx's CPU per request, so that on a small machine the server, not the
client, is what the figures show. Bench-only: no TLS, no chunked replies, no redirects."""

from __future__ import annotations

import asyncio
import json
from typing import Any


def request_bytes(path: str, body: Any, headers: dict[str, str], host: str) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class RawConnection:
    """One keep-alive connection; ``post`` sends the prepared request and returns the status."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
