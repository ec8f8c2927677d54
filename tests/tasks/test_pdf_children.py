"""Large PDFs split across pipeline children: the same output as in one process."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fpdf import FPDF

from jobrunner.errors import PermanentError
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf import POOL_MIN_PAGES, extract_pdf
from jobrunner.pipelines.pdf_ranges import ranges
from jobrunner.tasks import pdf_job
from jobrunner.tasks.offload import Caps
from jobrunner.tasks.pool import ProcessPool
from tests.pipelines.test_pdf import FONT, NON_BMP, _make_long_pdf, make_astral_pdf
from tests.tasks.job_context import job_context

CAPS = Caps(memory_bytes=512 * 1024 * 1024, cpu_seconds=120, stop_grace=1.0)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(2, name="pdf-test")
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.pdf"
    _make_long_pdf(path, 100)
    return path


def _job(source: Path, out: Path, **kwargs: object) -> pdf_job.PdfJob:
    out.mkdir(exist_ok=True)
    values: dict[str, object] = {"password": None, "max_pages": None, "chunk_chars": 200}
    values.update(kwargs)
    pages, chunks = out / "pages.jsonl", out / "chunks.jsonl"
    return pdf_job.PdfJob(source, pages_out=pages, chunks_out=chunks, **values)  # type: ignore[arg-type]


async def _extract(
    pool: ProcessPool, job: pdf_job.PdfJob, limits: InputLimits | None = None
) -> object:
    ctx = job_context()
    limits = limits or InputLimits()
    return await pdf_job.extract(ctx, pool, job, caps=CAPS, limits=limits, processes=0)


@pytest.mark.parametrize("max_pages", [None, 70])
async def test_children_write_what_one_process_writes(
    pool: ProcessPool, long_pdf: Path, max_pages: int | None, tmp_path: Path
) -> None:
    job = _job(long_pdf, tmp_path / "children", max_pages=max_pages)
    split = await _extract(pool, job)
    alone = extract_pdf(
        long_pdf,
        password=None,
        max_pages=max_pages,
        chunk_chars=200,
        pages_out=tmp_path / "p.jsonl",
        chunks_out=tmp_path / "c.jsonl",
    )
    assert pool.started == 2  # both children read ranges
    exclude = {"pages_out", "chunks_out"}
    assert split.model_dump(exclude=exclude) == alone.model_dump(exclude=exclude)  # type: ignore[attr-defined]
    assert job.pages_out.read_text() == (tmp_path / "p.jsonl").read_text()
    assert job.chunks_out.read_text() == (tmp_path / "c.jsonl").read_text()
    limit = max_pages or 100
    assert alone.scanned_pages == list(range(10, limit + 1, 10))


async def test_children_read_a_replaced_file_afresh(pool: ProcessPool, tmp_path: Path) -> None:
    """A child keeps its last document open between ranges; a new file at the same path
    (the next job's scratch file) must still be read, not the kept one."""
    source = tmp_path / "input.pdf"
    texts = []
    for word in ("alpha", "omega"):
        pdf = FPDF()
        pdf.set_font("helvetica", size=10)
        for number in range(1, POOL_MIN_PAGES + 1):
            pdf.add_page()
            pdf.cell(text=f"{word} {number}")
        pdf.output(str(source))
        job = _job(source, tmp_path / word)
        await _extract(pool, job)
        texts.append([json.loads(line)["text"] for line in job.pages_out.read_text().splitlines()])
    assert texts[0] == [f"alpha {n}" for n in range(1, POOL_MIN_PAGES + 1)]
    assert texts[1] == [f"omega {n}" for n in range(1, POOL_MIN_PAGES + 1)]


@pytest.mark.skipif(not FONT.is_file(), reason=f"{FONT} not installed")
async def test_text_outside_the_bmp_survives_the_children(
    pool: ProcessPool, tmp_path: Path
) -> None:
    source = tmp_path / "astral.pdf"
    make_astral_pdf(source, POOL_MIN_PAGES)
    job = _job(source, tmp_path / "out")
    await _extract(pool, job)
    texts = [json.loads(line)["text"] for line in job.pages_out.read_text().splitlines()]
    assert texts == [f"{n}: {NON_BMP}" for n in range(1, POOL_MIN_PAGES + 1)]


async def test_page_bound(pool: ProcessPool, long_pdf: Path, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        await _extract(pool, _job(long_pdf, tmp_path / "a"), InputLimits(pdf_max_pages=50))
    assert info.value.code == "pdf_too_many_pages"
    first_fifty = _job(long_pdf, tmp_path / "b", max_pages=50)
    result = await _extract(pool, first_fifty, InputLimits(pdf_max_pages=50))
    assert result.pages_processed == 50  # type: ignore[attr-defined]


def test_ranges_cover_every_page_once() -> None:
    for limit in (POOL_MIN_PAGES, 100, 500, 10_000):
        spans = ranges(limit, 2)
        assert spans[0][0] == 0
        assert spans[-1][1] == limit
        assert all(a < b == c for (a, b), (c, _) in itertools.pairwise(spans))
