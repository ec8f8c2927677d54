"""Pages per second of jobrunner's PDF extraction against pypdf's extract_text.

Run by hand (never in CI): ``.venv/bin/python bench/pdf_extract.py``. Uses the shared sample
PDFs (the encrypted one with its README password) and a generated 500-page PDF in bench/out/.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader

from jobrunner.pipelines.pdf import extract_pdf

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


def ours(path: Path, password: str | None, processes: int = 0) -> int:
    result = extract_pdf(
        path,
        password=password,
        max_pages=None,
        pages_out=OUT / "pages.jsonl",
        chunks_out=OUT / "chunks.jsonl",
        processes=processes,
    )
    return result.pages_processed


def ours_one_process(path: Path, password: str | None) -> int:
    """No process pool: what one core gives, for comparison with single-threaded pypdf."""
    return ours(path, password, processes=1)


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
    fast = pages_per_second(ours, files, reps)
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
