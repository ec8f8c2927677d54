"""A stream on its way to storage, for every backend's put_stream: measured as it passes (size,
sha256, a limit), its first part read ahead, and the caller's own failures told apart from the
store's."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from jobrunner.errors import BlobTooLargeError


class SourceError(Exception):
    """The caller's stream failed: re-raised as itself, never taken for a store error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class StreamMeter:
    """Size and sha256 of a stream as it passes; BlobTooLargeError past ``limit``."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    async def through(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        source = aiter(chunks)
        while True:
            try:
                piece = await anext(source)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise SourceError(exc) from exc
            self.size += len(piece)
            if self.limit is not None and self.size > self.limit:
                raise BlobTooLargeError(
                    f"more than {self.limit} bytes", limit=self.limit, size=self.size
                )
            self.digest.update(piece)
            yield piece


async def read_head(pieces: AsyncIterator[bytes], size: int) -> bytearray:
    """Up to ``size`` bytes (or a little more) from the start of a stream."""
    head = bytearray()
    while len(head) < size:
        piece = await anext(pieces, None)
        if piece is None:
            break
        head += piece
    return head


async def chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield head
    async for piece in rest:
        yield piece
