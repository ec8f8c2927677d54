"""Blob storage for uploads, large results and pipeline outputs.

Refs look like ``blob://<id>/<name>`` (outputs) or ``upload://<id>/<name>`` (inputs brought in
by uploads and connectors); both live in the same store.

``BlobStore`` is the interface every backend implements (one contract test suite runs against
each); ``FileBlobStore`` keeps blobs under the data dir, ``S3BlobStore`` (s3_blobs.py) in a
bucket, and ``blob_store(settings)`` (blob_backends.py) picks one. File I/O runs in a thread so
the event loop never blocks on a disk. Streams (``put_stream``, ``iter_bytes``) move large
blobs in chunks, never whole in memory.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from jobrunner.errors import BlobNotFoundError
from jobrunner.store.stream_meter import SourceError, StreamMeter

_REF = re.compile(r"^(?:blob|upload)://([0-9a-f]{32})(?:/([A-Za-z0-9._\-]{1,200}))?$")


CHUNK_BYTES = 1024 * 1024  # streamed blobs are written and read in pieces of this size


@dataclass(frozen=True)
class StoredBlob:
    """What a streamed write produced."""

    ref: str
    size: int
    sha256: str


class BlobStore(Protocol):
    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        name: str = "data",
        scheme: str = "upload",
        max_bytes: int | None = None,
    ) -> StoredBlob:
        """Store a stream; past ``max_bytes`` nothing is kept and BlobTooLargeError is raised."""
        ...

    def iter_bytes(self, ref: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks (BlobNotFoundError before the first one if it is gone)."""
        ...

    async def size(self, ref: str) -> int: ...

    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str: ...

    async def put_file(
        self, path: Path, *, name: str | None = None, scheme: str = "blob"
    ) -> str: ...

    async def get_bytes(self, ref: str) -> bytes: ...

    async def local_path(self, ref: str) -> Path:
        """A local file with the blob's bytes, to read (never write): the blob's own file, or a
        copy a remote store keeps in its bounded cache (blob_cache.py says for how long)."""
        ...

    async def delete(self, ref: str) -> None:
        """Remove the blob (and this machine's cached copy); a missing or malformed ref is a
        no-op."""
        ...


def parse_ref(ref: str) -> tuple[str, str | None]:
    """(blob id, name or None) of a ref; BlobNotFoundError for anything that is not a ref."""
    match = _REF.fullmatch(ref)
    if not match:
        raise BlobNotFoundError(f"not a blob ref: {ref!r}", ref=ref)
    return match.group(1), match.group(2)


def safe_name(name: str) -> str:
    """A file name safe on every backend: letters, digits, ``._-``, at most 200 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._\-]", "_", name)[:200].lstrip(".")
    return cleaned or "data"


def check_scheme(scheme: str) -> str:
    if scheme not in ("blob", "upload"):
        raise ValueError(f"blob refs are blob:// or upload://, not {scheme}://")
    return scheme


class FileBlobStore:
    """Blobs as files ``<root>/<id>/<name>``; writes go to a temp file, then an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        blob_id, name = parse_ref(ref)
        folder = self.root / blob_id
        if name:
            return folder / name
        entries = sorted(folder.glob("*")) if folder.is_dir() else []
        if not entries:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)
        return entries[0]

    def _write(self, data: bytes, name: str, scheme: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        return f"{scheme}://{blob_id}/{name}"

    def _copy(self, path: Path, name: str, scheme: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, folder / name)
        return f"{scheme}://{blob_id}/{name}"

    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str:
        return await asyncio.to_thread(self._write, data, safe_name(name), check_scheme(scheme))

    async def put_file(self, path: Path, *, name: str | None = None, scheme: str = "blob") -> str:
        return await asyncio.to_thread(
            self._copy, path, safe_name(name or path.name), check_scheme(scheme)
        )

    async def get_bytes(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref) from exc

    async def local_path(self, ref: str) -> Path:
        path = self._path(ref)
        if not await asyncio.to_thread(path.is_file):
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)
        return path

    async def delete(self, ref: str) -> None:
        match = _REF.fullmatch(ref)
        if match:
            await asyncio.to_thread(shutil.rmtree, self.root / match.group(1), True)

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        name: str = "data",
        scheme: str = "upload",
        max_bytes: int | None = None,
    ) -> StoredBlob:
        name, scheme = safe_name(name), check_scheme(scheme)
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        tmp = folder / f".{name}.tmp"
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        meter = StreamMeter(max_bytes)  # size, sha256 and the limit, as with every backend
        try:
            handle = await asyncio.to_thread(tmp.open, "wb")
            try:
                async for piece in rechunk(meter.through(chunks), CHUNK_BYTES):
                    await asyncio.to_thread(handle.write, piece)
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, tmp, folder / name)
        except BaseException as exc:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            if isinstance(exc, SourceError):
                raise exc.error from None
            raise
        return StoredBlob(f"{scheme}://{blob_id}/{name}", meter.size, meter.digest.hexdigest())

    async def iter_bytes(self, ref: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        path = self._path(ref)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref) from exc
        try:
            while piece := await asyncio.to_thread(handle.read, chunk_size):
                yield piece
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, ref: str) -> int:
        path = self._path(ref)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref) from exc


async def rechunk(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a stream of small pieces (an HTTP body arrives in ~64 KB) into ``size`` ones,
    so each disk write costs one thread hop per MiB rather than per piece."""
    buffer = bytearray()
    async for piece in chunks:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
