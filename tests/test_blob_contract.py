"""The BlobStore contract: one suite, run against every backend (the ``blobs`` fixture's params).

``file`` is the FileBlobStore under the data dir; ``s3`` is the S3BlobStore against a local
S3-compatible server the session starts (moto's emulator, see tests/s3_server.py). Both are
built by ``blob_store(settings)``, the factory every entry point uses. A ``Witness`` looks at
what each backend really holds (the folder, or the bucket through boto3), not through the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobrunner.errors import BlobNotFoundError, BlobTooLargeError
from jobrunner.settings import Settings
from jobrunner.store.blob_backends import blob_store
from jobrunner.store.blobs import BlobStore, FileBlobStore
from jobrunner.store.s3_blobs import S3BlobStore
from tests.s3_server import S3Server

MIB = 1024 * 1024


@dataclass
class Witness:
    """What a backend holds, seen from outside the store."""

    store: BlobStore
    server: S3Server | None = None

    async def ids(self) -> set[str]:
        """The blob ids stored (folders, or the id part of object keys)."""
        if isinstance(self.store, FileBlobStore):
            root = self.store.root
            return {p.name for p in root.iterdir()} if root.is_dir() else set()
        assert isinstance(self.store, S3BlobStore) and self.server
        prefix = self.store.options.prefix + "/"
        keys = await asyncio.to_thread(self.server.keys, prefix)
        return {key.removeprefix(prefix).split("/")[0] for key in keys}

    async def pending_uploads(self) -> list[str]:
        if self.server is None:
            return []
        assert isinstance(self.store, S3BlobStore)
        return await asyncio.to_thread(self.server.pending_uploads, self.store.options.prefix)


@pytest.fixture(params=["file", "s3"])
def settings_for_blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    values: dict[str, object] = {"data_dir": tmp_path / "data"}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        values.update(server.settings_for())
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def blobs(settings_for_blobs: Settings) -> BlobStore:
    return blob_store(settings_for_blobs)


@pytest.fixture
def witness(blobs: BlobStore, request: pytest.FixtureRequest) -> Witness:
    if isinstance(blobs, S3BlobStore):
        return Witness(blobs, request.getfixturevalue("s3_server"))
    return Witness(blobs)


def test_the_factory_builds_the_backend_the_url_names(settings_for_blobs: Settings) -> None:
    store = blob_store(settings_for_blobs)
    if settings_for_blobs.blob_url is None:
        assert isinstance(store, FileBlobStore)
        assert store.root == settings_for_blobs.data_dir / "blobs"
    else:
        assert isinstance(store, S3BlobStore)
        assert store.options.bucket == "jobrunner-test" and store.options.prefix


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _block(i: int) -> bytes:
    """Block ``i`` of a deterministic stream, different every block."""
    return hashlib.sha256(str(i).encode()).digest() * 2048  # 64 KiB


async def _generated(total: int, fail_after: int | None = None) -> AsyncIterator[bytes]:
    """``total`` bytes made as they are read (never whole in memory); raises after
    ``fail_after`` bytes when asked, like a client that hangs up mid-upload."""
    sent, i = 0, 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise ConnectionResetError("client went away")
        piece = _block(i)[: total - sent]
        sent, i = sent + len(piece), i + 1
        yield piece


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


async def test_names_are_made_safe_and_schemes_checked(blobs: BlobStore) -> None:
    ref = await blobs.put_bytes(b"x", name="../../etc/pass wd")
    assert ref.endswith("/_.._etc_pass_wd")
    assert await blobs.get_bytes(ref) == b"x"
    with pytest.raises(ValueError, match="blob:// or upload://"):
        await blobs.put_bytes(b"x", scheme="s3")


async def test_a_stream_is_stored_with_its_size_and_digest(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 9000  # ~2.3 MB in 64 KB pieces: regrouped, never whole
    stored = await blobs.put_stream(_pieces(data, 65536), name="big.bin")
    assert stored.ref.startswith("upload://") and stored.ref.endswith("/big.bin")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await _read_all(blobs, stored.ref, chunk=100_000) == data
    pieces = [p async for p in blobs.iter_bytes(stored.ref, 1 << 20)]
    assert max(len(p) for p in pieces) <= 1 << 20 and len(pieces) == 3


async def test_a_large_stream_goes_up_in_parts_and_comes_back_in_chunks(
    blobs: BlobStore, witness: Witness
) -> None:
    total = 12 * MIB + 123  # three 5 MiB parts on S3
    expected = hashlib.sha256()
    async for piece in _generated(total):
        expected.update(piece)
    stored = await blobs.put_stream(_generated(total), name="large.bin")
    assert (stored.size, stored.sha256) == (total, expected.hexdigest())
    assert await blobs.size(stored.ref) == total
    seen, count, biggest = hashlib.sha256(), 0, 0
    async for piece in blobs.iter_bytes(stored.ref, 4 * MIB):
        seen.update(piece)
        count, biggest = count + 1, max(biggest, len(piece))
    assert seen.hexdigest() == expected.hexdigest()
    assert (count, biggest) == (4, 4 * MIB)
    if witness.server is not None:  # a multipart upload: S3's ETag says how many parts
        assert isinstance(blobs, S3BlobStore)
        blob_id, name = stored.ref.split("/")[2:]
        key = f"{blobs.options.prefix}/{blob_id}/{name}"
        etag = await asyncio.to_thread(witness.server.etag, key)
        assert etag.endswith("-3"), etag


async def test_a_stream_past_its_limit_keeps_nothing(blobs: BlobStore, witness: Witness) -> None:
    with pytest.raises(BlobTooLargeError) as caught:
        await blobs.put_stream(_pieces(b"x" * 5000, 1000), name="too.big", max_bytes=4096)
    assert caught.value.details["limit"] == 4096
    with pytest.raises(BlobTooLargeError):  # past one part: the multipart upload is aborted
        await blobs.put_stream(_generated(7 * MIB), name="too.big", max_bytes=6 * MIB)
    ok = await blobs.put_stream(_pieces(b"x" * 4096, 1000), name="fits", max_bytes=4096)
    assert ok.size == 4096
    assert await witness.ids() == {ok.ref.split("/")[2]}
    assert await witness.pending_uploads() == []


async def test_a_stream_that_fails_midway_keeps_nothing(blobs: BlobStore, witness: Witness) -> None:
    for fail_after in (MIB, 6 * MIB):  # within the first part, and after a part went up
        with pytest.raises(ConnectionResetError):
            await blobs.put_stream(_generated(8 * MIB, fail_after=fail_after), name="cut")
    assert await witness.ids() == set()
    assert await witness.pending_uploads() == []


async def test_an_empty_stream_is_an_empty_blob(blobs: BlobStore) -> None:
    stored = await blobs.put_stream(_pieces(b"", 10), name="empty")
    assert stored.size == 0
    assert await blobs.get_bytes(stored.ref) == b""
    assert await _read_all(blobs, stored.ref) == b""


async def test_files_are_copied_and_readable_locally(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "catalog.csv"
    source.write_bytes(b"sku,price\n1,2\n")
    ref = await blobs.put_file(source, scheme="upload")
    assert ref.endswith("/catalog.csv")
    local = await blobs.local_path(ref)
    assert local.read_bytes() == source.read_bytes()
    assert local.name == "catalog.csv"  # pipelines may look at the extension
    with pytest.raises(FileNotFoundError):
        await blobs.put_file(tmp_path / "missing.csv")


async def test_a_local_copy_is_reused_not_fetched_again(blobs: BlobStore) -> None:
    ref = await blobs.put_bytes(b"a,b\n1,2\n", name="in.csv", scheme="upload")
    first = await blobs.local_path(ref)
    inode = first.stat().st_ino
    again = await blobs.local_path(ref)
    assert again == first and again.stat().st_ino == inode
    together = await asyncio.gather(*(blobs.local_path(ref) for _ in range(5)))
    assert set(together) == {first}
    assert [p.name for p in first.parent.iterdir()] == ["in.csv"]  # no temp file left over
    if isinstance(blobs, S3BlobStore):
        assert first.is_relative_to(blobs.cache.root)


async def test_a_ref_without_a_name_finds_its_blob(blobs: BlobStore) -> None:
    ref = await blobs.put_bytes(b"payload", name="result.json")
    bare = ref.rsplit("/", 1)[0]
    assert await blobs.get_bytes(bare) == b"payload"
    assert await blobs.size(bare) == 7
    assert (await blobs.local_path(bare)).read_bytes() == b"payload"


async def test_deleted_blobs_are_gone_everywhere(blobs: BlobStore, witness: Witness) -> None:
    keep = await blobs.put_bytes(b"keep", name="k")
    ref = await blobs.put_bytes(b"gone soon", name="x.csv")
    local = await blobs.local_path(ref)
    await blobs.delete(ref)
    assert await witness.ids() == {keep.split("/")[2]}
    assert not local.exists()
    with pytest.raises(BlobNotFoundError):
        await blobs.local_path(ref)
    await blobs.delete(ref)  # deleting twice is fine
    await blobs.delete("not a ref")  # and a malformed ref is nothing to delete
    assert await blobs.get_bytes(keep) == b"keep"


async def test_missing_and_malformed_refs_are_not_found(blobs: BlobStore) -> None:
    ref = await blobs.put_bytes(b"gone soon", name="x")
    await blobs.delete(ref)
    missing = "upload://" + "0" * 32
    for bad in (ref, "blob://nothex/x", "s3://bucket/key", missing + "/none", missing):
        with pytest.raises(BlobNotFoundError):
            await blobs.get_bytes(bad)
        with pytest.raises(BlobNotFoundError):
            await blobs.size(bad)
        with pytest.raises(BlobNotFoundError):
            await _read_all(blobs, bad)
        with pytest.raises(BlobNotFoundError):
            await blobs.local_path(bad)


async def test_no_write_leaves_a_temp_file_behind(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(1000))
    refs = [
        await blobs.put_bytes(b"1", name="a"),
        await blobs.put_file(source),
        (await blobs.put_stream(_pieces(b"22", 1), name="c")).ref,
    ]
    for ref in refs:
        local = await blobs.local_path(ref)
        assert [p.name for p in local.parent.iterdir()] == [local.name]
