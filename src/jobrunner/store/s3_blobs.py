"""Blobs in S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, GCS's S3 API).

Objects are ``<prefix>/<id>/<name>`` in one bucket (the file store's layout), so a ref names the
same blob on every machine. The client is obstore (Rust's object_store): its requests are native
async, retried with backoff, and it streams both ways. A stream goes up as a multipart upload in
``part_bytes`` parts with at most ``upload_concurrency`` in flight, which (with the part being
filled) is all the memory a ``put_stream`` holds; a stream shorter than one part is one PUT. An
upload that fails or passes its limit is aborted, leaving nothing. Downloads stream in chunks;
``local_path`` fills a BlobCache under the data dir.

Credentials and endpoint: the options given (JOBRUNNER_S3_*), else the standard AWS_* variables
of the process environment, else the instance or container role (obstore's provider chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import obstore as obs
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from jobrunner.errors import BlobNotFoundError, BlobStoreUnavailableError, JobRunnerError
from jobrunner.store.blob_cache import BlobCache
from jobrunner.store.blobs import CHUNK_BYTES, StoredBlob, check_scheme, parse_ref, safe_name
from jobrunner.store.stream_meter import SourceError, StreamMeter, chain, read_head

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

_S3_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")


@dataclass(frozen=True)
class S3Options:
    """Where the bucket is and how to talk to it; ``None`` leaves a value to the environment."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)  # never in a log line
    virtual_hosted_style: bool = False
    part_bytes: int = 8 * 1024 * 1024
    upload_concurrency: int = 4
    retry_seconds: float = 60.0


def _s3_store(o: S3Options) -> S3Store:
    config: S3Config = {}
    if o.endpoint_url:
        config["endpoint"] = o.endpoint_url
    if o.region:
        config["region"] = o.region
    if o.access_key_id:
        config["access_key_id"] = o.access_key_id
    if o.secret_access_key:
        config["secret_access_key"] = o.secret_access_key
    if o.virtual_hosted_style:
        config["virtual_hosted_style_request"] = True
    client: ClientConfig | None = None  # None: AWS_ALLOW_HTTP etc. from the environment apply
    if o.endpoint_url and o.endpoint_url.startswith("http://"):
        client = {"allow_http": True}  # a local MinIO or emulator; https everywhere else
    return S3Store(
        o.bucket,
        prefix=o.prefix or None,
        config=config or None,
        client_options=client,
        retry_config={"retry_timeout": timedelta(seconds=o.retry_seconds)},
    )


def _failure(exc: Exception, ref: str, doing: str) -> JobRunnerError:
    """obstore's error as ours: a missing object is not found, anything else says why."""
    text = str(exc)
    if isinstance(exc, FileNotFoundError) and "NoSuchBucket" not in text and doing == "reading":
        return BlobNotFoundError(f"no blob {ref!r}", ref=ref)
    return BlobStoreUnavailableError(f"{doing} {ref} failed: {_reason(exc)}", ref=ref)


def _reason(exc: Exception) -> str:
    """obstore's first line (without the XML body), plus S3's own error code and message."""
    text = str(exc)
    reason = text.split("\n", 1)[0].split(": <?xml", 1)[0].strip()[:400]
    code, message = _S3_CODE.search(text), _S3_MESSAGE.search(text)
    if code:
        reason += f" ({code.group(1)}: {message.group(1) if message else ''})"
    return reason or type(exc).__name__


@contextlib.contextmanager
def _errors(ref: str, doing: str) -> Iterator[None]:
    try:
        yield
    except (ObstoreError, OSError) as exc:
        raise _failure(exc, ref, doing) from exc


class S3BlobStore:
    """The BlobStore protocol over one bucket (and prefix); see the module docstring."""

    def __init__(self, options: S3Options, cache: BlobCache) -> None:
        self.options = options
        self.cache = cache
        self._store = _s3_store(options)

    async def _put(self, key: str, body: bytes | Path | AsyncIterator[bytes]) -> None:
        """One PUT, or a multipart upload for a stream or anything larger than a part."""
        await obs.put_async(
            self._store,
            key,
            body,
            use_multipart=None if isinstance(body, bytes | Path) else True,
            chunk_size=self.options.part_bytes,
            max_concurrency=self.options.upload_concurrency,
        )

    async def _keys(self, blob_id: str) -> list[str]:
        keys: list[str] = []
        async for batch in obs.list(self._store, prefix=f"{blob_id}/", chunk_size=100):
            keys += [meta["path"] for meta in batch]
        return sorted(keys)

    async def _key(self, ref: str) -> str:
        blob_id, name = parse_ref(ref)
        if name:
            return f"{blob_id}/{name}"
        with _errors(ref, "reading"):
            keys = await self._keys(blob_id)
        if not keys:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)
        return keys[0]

    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str:
        name, scheme = safe_name(name), check_scheme(scheme)
        blob_id = uuid.uuid4().hex
        ref = f"{scheme}://{blob_id}/{name}"
        with _errors(ref, "storing"):
            await self._put(f"{blob_id}/{name}", data)
        return ref

    async def put_file(self, path: Path, *, name: str | None = None, scheme: str = "blob") -> str:
        name, scheme = safe_name(name or path.name), check_scheme(scheme)
        await asyncio.to_thread(path.stat)  # a missing local file is FileNotFoundError, as ever
        blob_id = uuid.uuid4().hex
        ref = f"{scheme}://{blob_id}/{name}"
        with _errors(ref, "storing"):
            await self._put(f"{blob_id}/{name}", path)
        return ref

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
        ref, key = f"{scheme}://{blob_id}/{name}", f"{blob_id}/{name}"
        meter = StreamMeter(max_bytes)
        pieces = aiter(meter.through(chunks))
        try:
            head = await read_head(pieces, self.options.part_bytes)
            with _errors(ref, "storing"):
                if len(head) < self.options.part_bytes:  # the whole stream: one plain PUT
                    await self._put(key, bytes(head))
                else:
                    body = chain(bytes(head), pieces)
                    del head
                    await self._put(key, body)  # aborted, leaving nothing, if the stream fails
        except SourceError as exc:
            raise exc.error from None
        return StoredBlob(ref, meter.size, meter.digest.hexdigest())

    async def _pieces(self, ref: str, key: str, chunk_size: int) -> AsyncIterator[bytes]:
        """The object's bytes as the network delivers them (pieces of at least chunk_size)."""
        with _errors(ref, "reading"):
            result = await obs.get_async(self._store, key)
        stream = result.stream(min_chunk_size=chunk_size)
        while True:
            with _errors(ref, "reading"):
                piece = await anext(stream, None)
            if piece is None:
                return
            yield piece

    async def iter_bytes(self, ref: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        key = await self._key(ref)
        buffer = bytearray()
        async for piece in self._pieces(ref, key, chunk_size):
            buffer += piece
            while len(buffer) >= chunk_size:
                yield bytes(buffer[:chunk_size])
                del buffer[:chunk_size]
        if buffer:
            yield bytes(buffer)

    async def get_bytes(self, ref: str) -> bytes:
        key = await self._key(ref)
        with _errors(ref, "reading"):
            result = await obs.get_async(self._store, key)
            return (await result.bytes_async()).to_bytes()

    async def size(self, ref: str) -> int:
        key = await self._key(ref)
        with _errors(ref, "reading"):
            return (await obs.head_async(self._store, key))["size"]

    async def local_path(self, ref: str) -> Path:
        """A local copy in the cache, fetched once per machine (see blob_cache.py)."""
        key = await self._key(ref)
        blob_id, name = key.split("/", 1)
        try:
            with _errors(ref, "reading"):
                meta = await obs.head_async(self._store, key)
        except BlobNotFoundError:
            await self.cache.forget(blob_id)  # deleted elsewhere: drop our copy too
            raise
        fetch = functools.partial(self._download, ref, key)
        return await self.cache.get(blob_id, name, meta["size"], fetch)

    async def _download(self, ref: str, key: str, dest: Path) -> None:
        handle = await asyncio.to_thread(dest.open, "wb")
        try:
            async for piece in self._pieces(ref, key, CHUNK_BYTES):
                await asyncio.to_thread(handle.write, piece)
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, ref: str) -> None:
        try:
            blob_id, _ = parse_ref(ref)
        except BlobNotFoundError:
            return
        with _errors(ref, "deleting"):
            # one DELETE per object: GCS's S3 API has no bulk delete (a blob is one object)
            for key in await self._keys(blob_id):
                await obs.delete_async(self._store, key)
        await self.cache.forget(blob_id)
