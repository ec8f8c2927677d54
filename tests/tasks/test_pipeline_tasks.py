"""Pipeline tasks end to end: enqueued, run by a worker, outputs in the blob store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings

PDF_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pdf"
needs_pdfs = pytest.mark.skipif(
    not PDF_DIR.is_dir(), reason="../shared/data/pdf is not beside the repo"
)


@pytest.fixture
def pipeline_settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, key_prefix, tmp_path, connector_allow_private=True)


@pytest.fixture
async def jr(pipeline_settings: Settings) -> AsyncIterator[JobRunner]:
    registry: Registry = build_registry(pipeline_settings)
    async with (
        JobRunner(pipeline_settings, registry) as runner,
        WorkerRunner(pipeline_settings, registry, redis=runner.redis),
    ):
        yield runner


async def run(jr: JobRunner, task: str, params: dict[str, Any]) -> Any:
    job = await jr.enqueue(task, params)
    return await jr.wait(job.id, timeout=60)


@needs_pdfs
async def test_process_pdf_extracts_pages_into_the_blob_store(jr: JobRunner) -> None:
    expected = {e["file"]: e for e in json.loads((PDF_DIR / "files.json").read_text())["data"]}
    uri = await jr.blobs.put_file(PDF_DIR / "pdflatex-4-pages.pdf", scheme="upload")
    done = await run(jr, "process_pdf", {"input_uri": uri})
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await jr.result(done.id)
    assert result["pages"] == expected["pdflatex-4-pages.pdf"]["pages"] == 4
    lines = (await jr.blobs.get_bytes(result["pages_ref"])).decode().splitlines()
    assert [json.loads(line)["page"] for line in lines] == [1, 2, 3, 4]
    assert any(a.event == "progress" for a in await jr.audit(done.id))


@needs_pdfs
async def test_process_pdf_bad_inputs_fail_with_stable_codes_and_no_retry(jr: JobRunner) -> None:
    not_pdf = await jr.blobs.put_bytes(b"hello, not a pdf", name="x.pdf", scheme="upload")
    locked = await jr.blobs.put_file(PDF_DIR / "libreoffice-writer-password.pdf", scheme="upload")
    cases = [
        ({"input_uri": not_pdf}, "not_pdf"),
        ({"input_uri": locked}, "pdf_encrypted"),
        ({"input_uri": locked, "password": "wrong"}, "pdf_encrypted"),
        ({"input_uri": "upload://" + "0" * 32 + "/missing.pdf"}, "input_not_found"),
        ({"input_uri": "file:///etc/passwd"}, "input_not_allowed"),
    ]
    for params, code in cases:
        done = await run(jr, "process_pdf", params)
        assert done.status is JobStatus.FAILED, params
        assert done.error is not None and done.error.code == code
        assert done.attempts == 1
    opened = await run(jr, "process_pdf", {"input_uri": locked, "password": "openpassword"})
    assert opened.status is JobStatus.SUCCEEDED


async def test_generate_report_groups_and_writes_csv(jr: JobRunner) -> None:
    data = b"region,amount\nnorth,10\nsouth,5\nnorth,7\n"
    uri = await jr.blobs.put_bytes(data, name="sales.csv", scheme="upload")
    params = {"input_uri": uri, "group_by": ["region"], "format": "csv",
              "metrics": [{"column": "amount", "agg": "sum"}]}  # fmt: skip
    done = await run(jr, "generate_report", params)
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await jr.result(done.id)
    assert result["rows"] == 2
    report = (await jr.blobs.get_bytes(result["report_ref"])).decode().splitlines()
    assert report[1:] == ["north,17", "south,5"]
    params["metrics"] = [{"column": "nope", "agg": "sum"}]
    failed = await run(jr, "generate_report", params)
    assert failed.error is not None and failed.error.code == "report_unknown_column"


async def _serve_once(body: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: text/csv\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_sync_connector_then_validate_csv(jr: JobRunner) -> None:
    feed = b"sku,title,price\nA,Shirt,1\nB,Hat,-2\nC,Sock,3\n"
    server, port = await _serve_once(feed)
    async with server:
        done = await run(jr, "sync_connector", {"url": f"http://127.0.0.1:{port}/feed.csv"})
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await jr.result(done.id)
    assert result["rows"] == 3
    assert result["uri"].startswith("upload://")
    assert await jr.blobs.get_bytes(result["uri"]) == feed
    checked = await run(jr, "validate_csv", {"input_uri": result["uri"]})
    assert checked.status is JobStatus.SUCCEEDED, checked.error
    summary = await jr.result(checked.id)
    assert (summary["total_rows"], summary["invalid_rows"]) == (3, 1)
    assert summary["errors_by_code"] == {"min": 1}
    report = (await jr.blobs.get_bytes(summary["report_ref"])).decode().splitlines()
    assert report[0] == "row,column,code,message,value"
    assert report[1].startswith("3,price,min,")


async def test_validate_csv_auto_fix_and_bad_inputs(jr: JobRunner) -> None:
    data = "sku;title;price\nA; Shirt ;R$ 10,50\n".encode("cp1252")
    uri = await jr.blobs.put_bytes(data, name="catalog.csv", scheme="upload")
    done = await run(jr, "validate_csv", {"input_uri": uri, "auto_fix": True})
    assert done.status is JobStatus.SUCCEEDED, done.error
    summary = await jr.result(done.id)
    assert summary["valid_rows"] == 1
    fixed = (await jr.blobs.get_bytes(summary["corrected_ref"])).decode()
    assert fixed.splitlines()[1] == "A,Shirt,10.50"
    assert "changelog_ref" in summary
    unknown = await run(jr, "validate_csv", {"input_uri": uri, "marketplace": "ebay"})
    assert unknown.error is not None
    assert unknown.error.code == "unknown_ruleset"
    assert "mercado_livre" in unknown.error.message
    garbage = await jr.blobs.put_bytes(b"\x00\x01\x02binary", name="x.csv", scheme="upload")
    failed = await run(jr, "correct_csv", {"input_uri": garbage})
    assert failed.error is not None
    assert failed.error.code == "csv_not_text"
    assert failed.attempts == 1


async def test_sync_connector_refuses_loopback_by_default(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url, key_prefix, tmp_path)
    registry = build_registry(settings)
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis),
    ):
        done = await run(runner, "sync_connector", {"url": "http://127.0.0.1:9/x.csv"})
    assert done.status is JobStatus.FAILED
    assert done.error is not None and done.error.code == "url_target_not_allowed"
