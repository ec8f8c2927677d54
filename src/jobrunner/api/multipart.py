"""Streaming ``multipart/form-data``: parts are read one at a time as the body arrives, a file
part's bytes flow straight on (to the blob store) and are never gathered in memory or spooled
to a temporary file first.

python-multipart's parser pushes events through callbacks; ``MultipartReader`` turns them into
pulls: ``next_part()``, then ``text()`` for a field or ``chunks()`` for a file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from jobrunner.api.problems import Problem

__all__ = ["MultipartReader", "Part", "boundary_of"]

_END = object()


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type, or None if it is not one."""
    media, options = parse_options_header(content_type)
    if media != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary:
        raise Problem(400, "malformed_multipart", "multipart/form-data without a boundary")
    return boundary


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None


def _part_of(headers: dict[bytes, bytes]) -> Part:
    _, options = parse_options_header(headers.get(b"content-disposition", b""))
    if b"name" not in options:
        raise Problem(400, "malformed_multipart", "a part has no Content-Disposition name")
    filename = options.get(b"filename")
    media = headers.get(b"content-type")
    return Part(
        name=options[b"name"].decode("utf-8", "replace"),
        filename=filename.decode("utf-8", "replace") if filename is not None else None,
        content_type=media.decode("latin-1").strip() if media else None,
    )


class MultipartReader:
    """Pull parts from a body stream (already size-limited by the caller)."""

    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._events: deque[object] = deque()
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._done = False
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._headers.clear,
                "on_header_field": self._on_field,
                "on_header_value": self._on_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": lambda: self._events.append(_part_of(self._headers)),
                "on_part_data": lambda data, start, end: self._events.append(data[start:end]),
                "on_part_end": lambda: self._events.append(_END),
            },
        )

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field, self._value = b"", b""

    async def _next_event(self) -> object | None:
        while not self._events:
            if self._done:
                return None
            try:
                piece = await anext(self._stream)
                self._parser.write(piece)
            except StopAsyncIteration:
                self._done = True
                self._parser.finalize()
            except MultipartParseError as exc:
                raise Problem(400, "malformed_multipart", f"bad multipart body: {exc}") from exc
        return self._events.popleft()

    async def next_part(self) -> Part | None:
        """The next part's headers (skipping what is left of the current one), or None."""
        while (event := await self._next_event()) is not None:
            if isinstance(event, Part):
                return event
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive."""
        while (event := await self._next_event()) is not None and event is not _END:
            if isinstance(event, bytes) and event:
                yield event

    async def text(self, limit: int) -> str:
        """The current part as text (a form field), at most ``limit`` bytes."""
        data = bytearray()
        async for piece in self.chunks():
            data += piece
            if len(data) > limit:
                raise Problem(413, "content_too_large", f"a form field is over {limit} bytes")
        return data.decode("utf-8", "replace")
