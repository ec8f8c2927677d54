"""The BlobStore contract: one suite, run against every backend (the ``blobs`` fixture's params)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobrunner.errors import BlobNotFoundError, BlobTooLargeError
from jobrunner.store.blobs import BlobStore, FileBlobStore


@pytest.fixture(params=["file"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    assert request.param == "file"
    return FileBlobStore(tmp_path / "blobs")


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read_all(blobs: BlobStore, ref: str, chunk: int = 1 << 20) -> bytes:
    return b"".join([piece async for piece in blobs.iter_bytes(ref, chunk)])


async def test_bytes_round_trip_under_both_schemes(blobs: BlobStore) -> None:
    out = await blobs.put_bytes(b"report", name="report.csv")
    upload = await blobs.put_bytes(b"input", name="in.csv", scheme="upload")
    assert out.startswith("blob://") and out.endswith("/report.csv")
    assert upload.startswith("upload://")
    assert await blobs.get_bytes(out) == b"report"
    assert await blobs.get_bytes(upload) == b"input"
    assert await blobs.size(out) == 6


async def test_a_stream_is_stored_with_its_size_and_digest(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 9000  # ~2.3 MB in 64 KB pieces: regrouped, never whole
    stored = await blobs.put_stream(_pieces(data, 65536), name="big.bin")
    assert stored.ref.startswith("upload://") and stored.ref.endswith("/big.bin")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await _read_all(blobs, stored.ref, chunk=100_000) == data
    pieces = [p async for p in blobs.iter_bytes(stored.ref, 1 << 20)]
    assert max(len(p) for p in pieces) <= 1 << 20 and len(pieces) == 3


async def test_a_stream_past_its_limit_keeps_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(BlobTooLargeError) as caught:
        await blobs.put_stream(_pieces(b"x" * 5000, 1000), name="too.big", max_bytes=4096)
    assert caught.value.details["limit"] == 4096
    ok = await blobs.put_stream(_pieces(b"x" * 4096, 1000), name="fits", max_bytes=4096)
    assert ok.size == 4096
    if isinstance(blobs, FileBlobStore):  # the partial write left no folder behind
        assert [p.name for p in (tmp_path / "blobs").iterdir()] == [ok.ref.split("/")[2]]


async def test_an_empty_stream_is_an_empty_blob(blobs: BlobStore) -> None:
    stored = await blobs.put_stream(_pieces(b"", 10), name="empty")
    assert stored.size == 0
    assert await blobs.get_bytes(stored.ref) == b""


async def test_files_are_copied_and_readable_locally(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "catalog.csv"
    source.write_bytes(b"sku,price\n1,2\n")
    ref = await blobs.put_file(source, scheme="upload")
    assert ref.endswith("/catalog.csv")
    local = await blobs.local_path(ref)
    assert local.read_bytes() == source.read_bytes()


async def test_missing_and_malformed_refs_are_not_found(blobs: BlobStore) -> None:
    ref = await blobs.put_bytes(b"gone soon", name="x")
    await blobs.delete(ref)
    for bad in (ref, "blob://nothex/x", "s3://bucket/key", "upload://" + "0" * 32 + "/none"):
        with pytest.raises(BlobNotFoundError):
            await blobs.get_bytes(bad)
        with pytest.raises(BlobNotFoundError):
            await blobs.size(bad)
        with pytest.raises(BlobNotFoundError):
            await _read_all(blobs, bad)
    await blobs.delete(ref)  # deleting twice is fine
