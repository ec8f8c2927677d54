"""What only the S3 backend has: its bucket layout, streaming multipart uploads, the local cache
shared by machines, credentials from the AWS environment, and errors that say why.

Runs against the session's local S3-compatible server (moto's emulator, tests/s3_server.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from jobrunner.embedded import free_port
from jobrunner.errors import BlobNotFoundError, BlobStoreUnavailableError
from jobrunner.settings import Settings
from jobrunner.store.blob_backends import blob_store
from jobrunner.store.s3_blobs import S3BlobStore
from tests.s3_server import CREDENTIALS, REGION, S3Server

MIB = 1024 * 1024


def _store(tmp_path: Path, **values: Any) -> S3BlobStore:
    store = blob_store(Settings(_env_file=None, data_dir=tmp_path, **values))  # type: ignore[arg-type]
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture
def s3_values(s3_server: S3Server) -> dict[str, Any]:
    return s3_server.settings_for()


async def test_objects_are_prefix_id_name_in_the_bucket(
    s3_server: S3Server, s3_values: dict[str, Any], tmp_path: Path
) -> None:
    store = _store(tmp_path, **s3_values)
    ref = await store.put_bytes(b"hello", name="report.csv")
    blob_id = ref.split("/")[2]
    prefix = store.options.prefix
    assert s3_values["blob_url"].endswith("/" + prefix)
    keys = await asyncio.to_thread(s3_server.keys, prefix)
    assert keys == [f"{prefix}/{blob_id}/report.csv"]
    assert not (tmp_path / "blobs").exists()  # nothing on the local disk but the cache


async def test_a_stream_is_uploaded_while_it_is_read_not_after(
    s3_server: S3Server, s3_values: dict[str, Any], tmp_path: Path
) -> None:
    """When the last byte is read, most of the stream is already in the bucket: a put_stream
    holds about (concurrency + 1) parts, never the whole stream."""
    store = _store(tmp_path, **s3_values, s3_upload_concurrency=2)
    total, part = 40 * MIB, s3_values["s3_part_bytes"]
    uploaded_at_end: list[int] = []

    async def source() -> AsyncIterator[bytes]:
        for i in range(total // MIB):
            yield hashlib.sha256(str(i).encode()).digest() * (MIB // 32)
        parts = await asyncio.to_thread(_parts_so_far, s3_server, store.options.prefix)
        uploaded_at_end.append(parts * part)

    stored = await store.put_stream(source(), name="stream.bin")
    assert stored.size == total
    (uploaded,) = uploaded_at_end
    assert uploaded >= total - part * (2 + 2), f"only {uploaded} of {total} bytes were sent"


def _parts_so_far(server: S3Server, prefix: str) -> int:
    client = server.client()
    (upload,) = client.list_multipart_uploads(Bucket=server.bucket, Prefix=prefix)["Uploads"]
    found = client.list_parts(Bucket=server.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return len(found.get("Parts", []))


async def test_a_blob_deleted_on_another_machine_is_not_served_from_the_cache(
    s3_values: dict[str, Any], tmp_path: Path
) -> None:
    here = _store(tmp_path / "here", **s3_values)
    there = _store(tmp_path / "there", **s3_values)
    ref = await here.put_bytes(b"sku\n1\n", name="in.csv", scheme="upload")
    mine, theirs = await here.local_path(ref), await there.local_path(ref)
    assert mine != theirs and mine.read_bytes() == theirs.read_bytes()
    assert mine.is_relative_to(tmp_path / "here" / "blob-cache")
    await there.delete(ref)
    assert not theirs.exists()
    with pytest.raises(BlobNotFoundError):
        await here.local_path(ref)
    assert not mine.exists()  # our stale copy went with it


async def test_credentials_and_endpoint_can_come_from_the_aws_environment(
    s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    store = _store(tmp_path, blob_url=f"s3://{s3_server.bucket}/from-env")
    ref = await store.put_bytes(b"env", name="x")
    assert await store.get_bytes(ref) == b"env"
    keys = await asyncio.to_thread(s3_server.keys, "from-env/")
    assert keys == [f"from-env/{ref.split('/')[2]}/x"]


async def test_an_unreachable_store_says_why(tmp_path: Path) -> None:
    store = _store(
        tmp_path,
        blob_url="s3://jobrunner-test/x",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key_id="k",
        s3_secret_access_key="s",
        s3_region=REGION,
        s3_retry_seconds=0.3,
    )
    with pytest.raises(BlobStoreUnavailableError) as caught:
        await store.put_bytes(b"x")
    assert caught.value.code == "blob_store_unavailable" and caught.value.retryable
    assert "storing blob://" in caught.value.message
    assert "error sending request" in caught.value.message  # the reason, not just "failed"
    with pytest.raises(BlobStoreUnavailableError, match="reading upload://"):
        await store.local_path("upload://" + "0" * 32 + "/in.csv")


async def test_a_missing_bucket_is_a_store_error_not_a_missing_blob(
    s3_values: dict[str, Any], tmp_path: Path
) -> None:
    store = _store(tmp_path, **{**s3_values, "blob_url": "s3://no-such-bucket/x"})
    with pytest.raises(BlobStoreUnavailableError, match="NoSuchBucket"):
        await store.put_bytes(b"x")
    with pytest.raises(BlobStoreUnavailableError, match="NoSuchBucket"):
        await store.get_bytes("blob://" + "0" * 32 + "/x")


@pytest.mark.parametrize(
    "url", ["s3://", "s3://UPPER/x", "http://bucket/x", "file://host/dir", "gs://bucket"]
)
def test_blob_urls_other_than_file_and_s3_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="s3://bucket/prefix"):
        Settings(_env_file=None, blob_url=url)  # type: ignore[call-arg]


def test_file_urls_name_the_data_dir_or_a_directory(tmp_path: Path) -> None:
    from jobrunner.store.blobs import FileBlobStore

    default = blob_store(Settings(_env_file=None, data_dir=tmp_path, blob_url="file://"))  # type: ignore[call-arg]
    shared = blob_store(Settings(_env_file=None, blob_url=f"file://{tmp_path}/shared"))  # type: ignore[call-arg]
    assert isinstance(default, FileBlobStore) and default.root == tmp_path / "blobs"
    assert isinstance(shared, FileBlobStore) and shared.root == tmp_path / "shared"


def test_the_secret_key_stays_out_of_reprs(s3_values: dict[str, Any], tmp_path: Path) -> None:
    store = _store(tmp_path, **{**s3_values, "s3_secret_access_key": "s3cr3t-value"})
    assert store.options.secret_access_key == "s3cr3t-value"
    assert "s3cr3t" not in repr(store.options)
    assert "s3cr3t" not in repr(Settings(_env_file=None, s3_secret_access_key="s3cr3t-value"))  # type: ignore[call-arg]
