"""Who owns a blob: tenant, job, content type and expiry, one Redis hash per blob id.

Uploads are recorded when they are stored; job outputs when a running task writes them,
through ``OwnedBlobStore``, the BlobStore a task receives, which records every write with the
job's tenant and id and refuses to read another tenant's blobs. A blob nobody recorded (one
written by the CLI or an embedding app) belongs to no tenant: the library may read it, the
HTTP API serves only blobs recorded for the caller's tenant.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

from jobrunner.errors import BlobNotFoundError
from jobrunner.store.blobs import CHUNK_BYTES, BlobStore, StoredBlob
from jobrunner.store.jobs import JobStore
from jobrunner.store.keys import Keys

__all__ = [
    "BlobIndex",
    "BlobOwner",
    "OwnedBlobStore",
    "blob_id",
    "content_type_of",
    "expiry_member",
    "job_blobs",
]

_REF = re.compile(r"^(?:blob|upload)://([0-9a-f]{32})(?:/([A-Za-z0-9._\-]{1,200}))?$")
_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".parquet": "application/vnd.apache.parquet",
    ".pdf": "application/pdf",
}
OCTET_STREAM = "application/octet-stream"
# How long an output's ownership entry outlives its first due time (the cleanup runs daily and
# extends it while the job's result lives).
OUTPUT_OWNER_MARGIN_S = 86_400


def blob_id(ref: str) -> str | None:
    """The id inside a ``blob://`` or ``upload://`` ref, or None if ``ref`` is not one."""
    match = _REF.fullmatch(ref)
    return match.group(1) if match else None


def content_type_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or OCTET_STREAM


@dataclass(frozen=True)
class BlobOwner:
    ref: str
    tenant: str
    content_type: str
    expires_at: datetime
    job_id: str | None = None

    @property
    def name(self) -> str:
        return self.ref.rsplit("/", 1)[-1] if self.ref.count("/") > 2 else "data"


def expiry_member(ref: str, job_id: str | None) -> str:
    """A blob's entry in the cleanup's expiry zset: 'ref<TAB>job id' ('' for an upload)."""
    return f"{ref}\t{job_id or ''}"


class BlobIndex:
    """Ownership entries, and when the cleanup may delete each blob: an upload
    ``ttl_seconds`` after it is written, a job's output once its result is gone (looked at
    first ``output_ttl_seconds`` after it is written, see store/cleanup.py)."""

    def __init__(
        self, redis: Redis, keys: Keys, *, ttl_seconds: int, output_ttl_seconds: int | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self.output_ttl_seconds = output_ttl_seconds or ttl_seconds

    async def record(
        self, ref: str, *, tenant: str, content_type: str, job_id: str | None = None
    ) -> BlobOwner:
        bid = blob_id(ref)
        if bid is None:
            raise BlobNotFoundError(f"not a blob ref: {ref!r}", ref=ref)
        ttl = self.output_ttl_seconds if job_id else self.ttl_seconds
        expires = datetime.now(tz=UTC) + timedelta(seconds=ttl)
        owner = BlobOwner(ref, tenant, content_type, expires, job_id)
        fields = {
            "ref": ref,
            "tenant": tenant,
            "content_type": content_type,
            "expires_ms": repr(expires.timestamp() * 1000),
        }
        if job_id:
            fields["job_id"] = job_id
        # an output's entry outlives its first due time: it goes when its job's result does
        keep = ttl + OUTPUT_OWNER_MARGIN_S if job_id else ttl
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.blob_owner(bid), mapping=fields)
            pipe.expire(self.keys.blob_owner(bid), keep)
            pipe.zadd(
                self.keys.blob_expiry, {expiry_member(ref, job_id): expires.timestamp() * 1000}
            )
            await pipe.execute()
        return owner

    async def owner(self, ref: str) -> BlobOwner | None:
        """Who owns ``ref``: None if nobody recorded it (or the entry expired)."""
        bid = blob_id(ref)
        if bid is None:
            return None
        raw = await self.redis.hgetall(self.keys.blob_owner(bid))  # type: ignore[misc]
        if not raw:
            return None
        h = {k.decode(): v.decode() for k, v in raw.items()}
        return BlobOwner(
            ref=h["ref"],
            tenant=h["tenant"],
            content_type=h["content_type"],
            expires_at=datetime.fromtimestamp(float(h["expires_ms"]) / 1000, tz=UTC),
            job_id=h.get("job_id"),
        )

    async def forget(self, ref: str) -> None:
        bid = blob_id(ref)
        if bid is None:
            return
        job_id = await self.redis.hget(self.keys.blob_owner(bid), "job_id")  # type: ignore[misc]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.blob_owner(bid))
            pipe.zrem(self.keys.blob_expiry, expiry_member(ref, None))
            if job_id:
                pipe.zrem(self.keys.blob_expiry, expiry_member(ref, bytes(job_id).decode()))
            await pipe.execute()


class OwnedBlobStore:
    """A BlobStore seen by one tenant's job: writes are recorded as that job's outputs, and
    blobs recorded for another tenant do not exist for it."""

    def __init__(
        self, inner: BlobStore, index: BlobIndex, tenant: str, job_id: str | None = None
    ) -> None:
        self.inner = inner
        self.index = index
        self.tenant = tenant
        self.job_id = job_id

    async def _record(self, ref: str, name: str) -> str:
        await self.index.record(
            ref, tenant=self.tenant, content_type=content_type_of(name), job_id=self.job_id
        )
        return ref

    async def _check(self, ref: str) -> None:
        owner = await self.index.owner(ref)
        if owner is not None and owner.tenant != self.tenant:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)

    async def put_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        name: str = "data",
        scheme: str = "upload",
        max_bytes: int | None = None,
    ) -> StoredBlob:
        stored = await self.inner.put_stream(chunks, name=name, scheme=scheme, max_bytes=max_bytes)
        await self._record(stored.ref, name)
        return stored

    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str:
        return await self._record(await self.inner.put_bytes(data, name=name, scheme=scheme), name)

    async def put_file(self, path: Path, *, name: str | None = None, scheme: str = "blob") -> str:
        ref = await self.inner.put_file(path, name=name, scheme=scheme)
        return await self._record(ref, name or path.name)

    async def iter_bytes(self, ref: str, chunk_size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        await self._check(ref)
        async for piece in self.inner.iter_bytes(ref, chunk_size):
            yield piece

    async def size(self, ref: str) -> int:
        await self._check(ref)
        return await self.inner.size(ref)

    async def get_bytes(self, ref: str) -> bytes:
        await self._check(ref)
        return await self.inner.get_bytes(ref)

    async def local_path(self, ref: str) -> Path:
        await self._check(ref)
        return await self.inner.local_path(ref)

    async def delete(self, ref: str) -> None:
        await self._check(ref)
        await self.inner.delete(ref)
        await self.index.forget(ref)


def job_blobs(
    blobs: BlobStore, store: JobStore, upload_ttl_seconds: int, *, tenant: str, job_id: str
) -> OwnedBlobStore:
    """The BlobStore a running job receives (``JobContext.blobs``): its writes are outputs,
    kept as long as the job's result."""
    index = BlobIndex(
        store.redis,
        store.keys,
        ttl_seconds=upload_ttl_seconds,
        output_ttl_seconds=store.result_ttl,
    )
    return OwnedBlobStore(blobs, index, tenant, job_id)
