"""Uploads (raw and multipart, streamed, size limits), downloads, multipart submits, and blob
ownership: other tenants' files are 404, job outputs are recorded as the job's tenant's."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from asgi_lifespan import LifespanManager

from jobrunner.api import create_app
from jobrunner.api.services import ApiServices
from jobrunner.errors import BlobNotFoundError
from jobrunner.runtime import JobRunner
from jobrunner.store.blobindex import OwnedBlobStore
from jobrunner.worker.runner import WorkerRunner
from tests.api.conftest import MakeKey, admin, api_settings, assert_problem, bearer

UPLOADS = "/api/v1/uploads"
CSV = b"sku,title,price\nA1,Red shirt,10.50\nA2,,abc\n"


def file_path(ref: str) -> str:
    return f"/api/v1/files/{quote(ref, safe='')}"


async def wait_terminal(api: ApiServices, job_id: str) -> None:
    async with asyncio.timeout(60):
        await api.runner.wait(job_id)


async def test_raw_upload_then_download_streams_it_back(
    client: httpx.AsyncClient, make_key: MakeKey
) -> None:
    key = await make_key()
    reply = await client.post(
        UPLOADS,
        params={"filename": "catalog.csv"},
        content=CSV,
        headers={**bearer(key), "content-type": "text/csv"},
    )
    assert reply.status_code == 201, reply.text
    up = reply.json()
    assert up["uri"].startswith("upload://") and up["uri"].endswith("/catalog.csv")
    assert (up["size"], up["sha256"], up["content_type"]) == (
        len(CSV),
        hashlib.sha256(CSV).hexdigest(),
        "text/csv",
    )
    assert reply.headers["Location"] == file_path(up["uri"]) and up["expires_at"].endswith("Z")
    down = await client.get(file_path(up["uri"]), headers=bearer(key))
    assert down.status_code == 200 and down.content == CSV
    assert down.headers["content-type"].startswith("text/csv")
    assert down.headers["content-length"] == str(len(CSV))
    assert down.headers["content-disposition"].startswith('attachment; filename="catalog.csv"')


async def test_multipart_upload(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    files = {"file": ("ünïcode name.pdf", b"%PDF-1.4 tiny", "application/pdf")}
    reply = await client.post(UPLOADS, files=files, headers=bearer(key))
    assert reply.status_code == 201, reply.text
    up = reply.json()
    assert up["content_type"] == "application/pdf" and up["size"] == 13
    down = await client.get(file_path(up["uri"]), headers=bearer(key))
    assert down.content == b"%PDF-1.4 tiny"
    assert "filename*=UTF-8''" in down.headers["content-disposition"]
    no_file = await client.post(UPLOADS, files={"note": (None, "x")}, headers=bearer(key))
    assert_problem(no_file, 422)


@pytest.fixture
async def small_client(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose uploads may be at most 1000 bytes."""
    app = create_app(api_settings(redis_url, key_prefix, tmp_path, max_upload_bytes=1000))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://small.test") as c:
            yield c


async def test_uploads_over_the_limit_are_413_and_leave_nothing(
    small_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    made = await small_client.post(
        "/api/v1/admin/keys", json={"tenant": "acme", "plan": "pro"}, headers=admin()
    )
    key = made.json()["api_key"]
    declared = await small_client.post(UPLOADS, content=b"x" * 1001, headers=bearer(key))
    assert_problem(declared, 413, "content-too-large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for _ in range(10):
            yield b"y" * 300

    streamed = await small_client.post(UPLOADS, content=chunks(), headers=bearer(key))
    assert_problem(streamed, 413)
    form = await small_client.post(
        UPLOADS, files={"file": ("a.bin", b"z" * 1500)}, headers=bearer(key)
    )
    assert_problem(form, 413)
    blobs = tmp_path / "blobs"
    assert not blobs.exists() or list(blobs.iterdir()) == []
    ok = await small_client.post(UPLOADS, content=b"x" * 1000, headers=bearer(key))
    assert ok.status_code == 201


async def test_other_tenants_files_are_404(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    mine, theirs = await make_key("acme"), await make_key("globex")
    up = (await client.post(UPLOADS, content=b"secret", headers=bearer(mine))).json()
    assert_problem(
        await client.get(file_path(up["uri"]), headers=bearer(theirs)), 404, "file-not-found"
    )
    missing = "upload://" + "0" * 32 + "/x"
    assert_problem(await client.get(file_path(missing), headers=bearer(mine)), 404)
    assert_problem(await client.get(file_path("not-a-ref"), headers=bearer(mine)), 404)


async def test_multipart_submit_validates_a_csv_and_serves_its_report(
    client: httpx.AsyncClient, make_key: MakeKey, api: ApiServices, worker: WorkerRunner
) -> None:
    key = await make_key()
    reply = await client.post(
        "/api/v1/jobs",
        data={"task": "validate_csv", "params": '{"marketplace": "default"}'},
        files={"file": ("catalog.csv", CSV, "text/csv")},
        headers=bearer(key),
    )
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert job["params"]["input_uri"].startswith("upload://")
    await wait_terminal(api, job["id"])
    result = (await client.get(f"/api/v1/jobs/{job['id']}/result", headers=bearer(key))).json()
    assert result["status"] == "succeeded" and set(result["files"]) == {"report_ref"}
    report = await client.get(result["files"]["report_ref"], headers=bearer(key))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert b"3,price,type_decimal" in report.content  # the bad row is reported
    owner = await api.blob_index.owner(result["result"]["report_ref"])
    assert owner is not None and (owner.tenant, owner.job_id) == ("acme", job["id"])
    other = await make_key("globex")
    assert_problem(await client.get(result["files"]["report_ref"], headers=bearer(other)), 404)


async def test_a_multipart_replay_keeps_no_second_upload(
    client: httpx.AsyncClient, make_key: MakeKey, tmp_path: Path
) -> None:
    key = await make_key()

    async def send(content: bytes) -> httpx.Response:
        return await client.post(
            "/api/v1/jobs",
            data={"task": "validate_csv"},
            files={"file": ("catalog.csv", content, "text/csv")},
            headers={**bearer(key), "Idempotency-Key": "upload-1"},
        )

    first, again = await send(CSV), await send(CSV)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert len(list((tmp_path / "blobs").iterdir())) == 1
    assert_problem(await send(CSV + b"A3,x,1\n"), 422, "idempotency-key-reuse")
    assert len(list((tmp_path / "blobs").iterdir())) == 1


async def test_multipart_submit_errors(client: httpx.AsyncClient, make_key: MakeKey) -> None:
    key = await make_key()
    bad_params = await client.post(
        "/api/v1/jobs",
        data={"task": "validate_csv", "params": "{nope"},
        files={"file": ("a.csv", CSV)},
        headers=bearer(key),
    )
    assert assert_problem(bad_params, 422)["errors"][0]["loc"] == "params"
    both = await client.post(
        "/api/v1/jobs",
        data={"task": "validate_csv", "params": '{"input_uri": "upload://x"}'},
        files={"file": ("a.csv", CSV)},
        headers=bearer(key),
    )
    assert assert_problem(both, 422)["errors"][0]["loc"] == "params.input_uri"
    garbage = await client.post(
        "/api/v1/jobs",
        content=b"--xyz\r\nnot a part",
        headers={**bearer(key), "content-type": "multipart/form-data; boundary=xyz"},
    )
    assert (
        garbage.status_code in (400, 422)
        and garbage.headers["content-type"] == "application/problem+json"
    )


async def test_a_job_cannot_read_another_tenants_upload(runner: JobRunner, tmp_path: Path) -> None:
    """Also where the pipeline resolves its input: the BlobStore a task gets hides them."""
    from jobrunner.store.blobindex import BlobIndex

    index = BlobIndex(runner.redis, runner.keys, ttl_seconds=60)
    ref = await runner.blobs.put_bytes(b"sku\n1\n", name="in.csv", scheme="upload")
    await index.record(ref, tenant="globex", content_type="text/csv")
    mine = OwnedBlobStore(runner.blobs, index, "acme", job_id="j")
    with pytest.raises(BlobNotFoundError):
        await mine.local_path(ref)
    theirs = OwnedBlobStore(runner.blobs, index, "globex")
    assert (await theirs.local_path(ref)).read_bytes() == b"sku\n1\n"
    with contextlib.suppress(BlobNotFoundError):
        await mine.delete(ref)
    assert await index.owner(ref) is not None  # still there: acme could not delete it


async def test_a_pipeline_job_naming_another_tenants_upload_fails(
    runner: JobRunner, worker: WorkerRunner
) -> None:
    from jobrunner.store.blobindex import BlobIndex

    index = BlobIndex(runner.redis, runner.keys, ttl_seconds=60)
    ref = await runner.blobs.put_bytes(CSV, name="in.csv", scheme="upload")
    await index.record(ref, tenant="globex", content_type="text/csv")
    job = await runner.enqueue("validate_csv", {"input_uri": ref}, tenant="acme")
    done = await runner.wait(job.id, timeout=60)
    assert done.status.value == "failed" and done.error is not None
    assert done.error.code == "input_not_found"
