"""Pages per second of jobrunner's PDF extraction against pypdf's extract_text.

Run by hand (never in CI): ``.venv/bin/python bench/pdf_extract.py``. Uses the shared sample
PDFs (the encrypted one with its README password) and a generated 500-page PDF in bench/out/.
"jobrunner" is process_pdf's own path (small documents in the calling process, large ones
split across the pipeline child processes, under the default 2 GB cap a job); "without its
process pool" is extract_pdf alone, in one process.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader

from jobrunner.context import JobContext
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf import extract_pdf
from jobrunner.tasks import pdf_job
from jobrunner.tasks.offload import Caps
from jobrunner.tasks.pool import ProcessPool

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data" / "pdf"
OUT = ROOT / "bench" / "out"
PASSWORDS = {"libreoffice-writer-password.pdf": "openpassword"}  # from the data README
BIG_PAGES = 500
TARGET_RATIO = 5.0

_VOCABULARY = (
    "job queue worker redis retry lease heartbeat priority deadline schedule progress "
    "cancel result record event stream batch shard quota limit token the of and to in is "
    "for on with as by at from that this be are was it"
)
_WORDS = _VOCABULARY.split()
# Most real-world producers (LibreOffice, LaTeX, browsers) embed their fonts; fpdf2's core
# fonts are the simplest case there is. The bench runs both when this font is installed.
TTF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def make_big_pdf(path: Path, pages: int, font_file: Path | None = None) -> None:
    """A text-heavy PDF: a heading and about 3,000 characters of prose on every page."""
    rng = random.Random(42)  # same document every run
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    family = "helvetica"
    if font_file is not None:
        pdf.add_font("body", fname=str(font_file))
        family = "body"
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font(family, size=14)
        pdf.cell(text=f"Section {number}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=9)
        for _ in range(5):
            words = " ".join(rng.choice(_WORDS) for _ in range(100))
            pdf.multi_cell(0, 4.5, text=words.capitalize() + ".", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


class Ours:
    """process_pdf's extraction with a pool kept across documents, as a worker keeps it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = ProcessPool(min(2, os.cpu_count() or 1), name="bench")
        self.caps = Caps(memory_bytes=2048 * 1024 * 1024, cpu_seconds=3600, stop_grace=5.0)

    def __call__(self, path: Path, password: str | None) -> int:
        return self.loop.run_until_complete(self._extract(path, password))

    async def _extract(self, path: Path, password: str | None) -> int:
        async def no_progress(percent: float, message: str | None) -> None:
            return None

        ctx = JobContext(
            job_id="bench",
            attempt=1,
            tenant="bench",
            correlation_id=None,
            task="process_pdf",
            blobs=None,  # type: ignore[arg-type]  # extraction does not store anything
            log=None,
            _sink=no_progress,
            _loop=asyncio.get_running_loop(),
        )
        job = pdf_job.PdfJob(path, password, None, 2000, OUT / "pages.jsonl", OUT / "chunks.jsonl")
        result = await pdf_job.extract(
            ctx, self.pool, job, caps=self.caps, limits=InputLimits(), processes=0
        )
        return result.pages_processed

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


def ours_one_process(path: Path, password: str | None) -> int:
    """No process pool: what one core gives, for comparison with single-threaded pypdf."""
    result = extract_pdf(
        path,
        password=password,
        max_pages=None,
        pages_out=OUT / "pages.jsonl",
        chunks_out=OUT / "chunks.jsonl",
    )
    return result.pages_processed


def pypdf(path: Path, password: str | None) -> int:
    reader = PdfReader(path, password=password)
    for page in reader.pages:
        page.extract_text()
    return len(reader.pages)


def pages_per_second(run: Callable[[Path, str | None], int], files: list[Path], reps: int) -> float:
    """Total pages over total wall time, after one untimed warm-up pass."""
    for f in files:
        run(f, PASSWORDS.get(f.name))
    pages = 0
    start = time.perf_counter()
    for _ in range(reps):
        for f in files:
            pages += run(f, PASSWORDS.get(f.name))
    return pages / (time.perf_counter() - start)


def compare(label: str, files: list[Path], reps: int) -> float:
    ours = Ours()
    try:
        fast = pages_per_second(ours, files, reps)
    finally:
        ours.close()
    single = pages_per_second(ours_one_process, files, reps)
    base = pages_per_second(pypdf, files, reps)
    ratio = fast / base
    print(
        f"{label:<28} jobrunner {fast:9.1f} pages/s   pypdf {base:8.1f} pages/s   "
        f"ratio {ratio:5.1f}x   (jobrunner without its process pool {single:7.1f} pages/s, "
        f"{single / base:4.1f}x)"
    )
    return ratio


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    big = OUT / f"generated-{BIG_PAGES}-pages.pdf"
    if not big.exists():
        make_big_pdf(big, BIG_PAGES)
    ratios: list[float] = []
    if (SHARED / "files.json").is_file():
        catalogue = json.loads((SHARED / "files.json").read_text())["data"]
        shared = [SHARED / e["file"] for e in catalogue]
        pages = sum(e["pages"] for e in catalogue)
        ratios.append(compare(f"shared ({len(shared)} files, {pages} pp) x20", shared, 20))
    else:
        print(f"shared PDFs not found at {SHARED}: skipped")
    ratios.append(compare(f"generated ({BIG_PAGES} pp) x3", [big], 3))
    if TTF.is_file():
        embedded = OUT / f"generated-{BIG_PAGES}-pages-ttf.pdf"
        if not embedded.exists():
            make_big_pdf(embedded, BIG_PAGES, TTF)
        ratios.append(compare(f"generated, TTF ({BIG_PAGES} pp) x3", [embedded], 3))
    else:
        print(f"{TTF} not installed: embedded-font variant skipped")
    worst = min(ratios)
    verdict = "meets" if worst >= TARGET_RATIO else "MISSES"
    print(f"worst ratio {worst:.1f}x {verdict} the {TARGET_RATIO:.0f}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
