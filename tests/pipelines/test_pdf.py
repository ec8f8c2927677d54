"""extract_pdf over the shared sample PDFs and a few generated ones."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF

from jobrunner.errors import PermanentError
from jobrunner.pipelines.pdf import PdfResult, extract_pdf

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pdf"
PASSWORD = "openpassword"  # user password given in the data folder's README

pytestmark = pytest.mark.skipif(
    not (DATA / "files.json").is_file(), reason=f"shared sample PDFs not found at {DATA}"
)


def _catalogue() -> list[dict[str, Any]]:
    if not (DATA / "files.json").is_file():
        return []
    entries: list[dict[str, Any]] = json.loads((DATA / "files.json").read_text())["data"]
    return entries


def _extract(path: Path, tmp_path: Path, **kwargs: Any) -> PdfResult:
    kwargs.setdefault("password", None)
    kwargs.setdefault("max_pages", None)
    return extract_pdf(
        path, pages_out=tmp_path / "pages.jsonl", chunks_out=tmp_path / "chunks.jsonl", **kwargs
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("entry", _catalogue(), ids=lambda e: e["file"])
def test_page_count_and_encryption_match_catalogue(entry: dict[str, Any], tmp_path: Path) -> None:
    password = PASSWORD if entry["encrypted"] else None
    result = _extract(DATA / entry["file"], tmp_path, password=password)
    assert result.pages == entry["pages"]
    assert result.pages_processed == entry["pages"]
    assert result.encrypted is entry["encrypted"]
    assert not result.truncated
    pages = _lines(tmp_path / "pages.jsonl")
    assert [p["page"] for p in pages] == list(range(1, entry["pages"] + 1))
    assert all(p["chars"] == len(p["text"]) > 0 for p in pages)


# The catalogue's producer and date for the encrypted file describe another revision of it
# (pdfium reads "LibreOffice 6.4", 20:35:52 from the file itself), so it is left out here.
@pytest.mark.parametrize(
    "entry", [e for e in _catalogue() if not e["encrypted"]], ids=lambda e: e["file"]
)
def test_metadata_matches_catalogue(entry: dict[str, Any], tmp_path: Path) -> None:
    meta = _extract(DATA / entry["file"], tmp_path).metadata
    assert meta.producer == entry["producer"]
    assert meta.creation_date == entry["creation_date"]


def test_title_is_read(tmp_path: Path) -> None:
    meta = _extract(DATA / "google-doc-document.pdf", tmp_path).metadata
    assert meta.title == "PDF Example Document"
    assert meta.author is None


def test_outline_has_titles_pages_and_levels(tmp_path: Path) -> None:
    result = _extract(DATA / "pdflatex-outline.pdf", tmp_path)
    titles = [(o.title, o.page, o.level) for o in result.outline]
    assert titles[:3] == [("Foo", 2, 0), ("Bar", 2, 0), ("Baz", 2, 0)]
    assert len(titles) == 9
    assert {o.page for o in result.outline} == {2, 3, 4}
    assert not result.outline_truncated
    assert _extract(DATA / "minimal-document.pdf", tmp_path).outline == []


def test_arabic_text_survives(tmp_path: Path) -> None:
    _extract(DATA / "habibi.pdf", tmp_path)
    text = _lines(tmp_path / "pages.jsonl")[0]["text"]
    assert "habibi" in text
    assert any("\u0600" <= ch <= "\u06ff" for ch in text)


@pytest.mark.parametrize(
    ("password", "why"), [(None, "needs a password"), ("wrong", "wrong password")]
)
def test_encrypted_without_right_password(password: str | None, why: str, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=why) as info:
        _extract(DATA / "libreoffice-writer-password.pdf", tmp_path, password=password)
    assert info.value.code == "pdf_encrypted"


def test_encrypted_with_password_reads_text(tmp_path: Path) -> None:
    result = _extract(DATA / "libreoffice-writer-password.pdf", tmp_path, password=PASSWORD)
    assert result.encrypted
    assert "Lorem ipsum" in _lines(tmp_path / "pages.jsonl")[0]["text"]


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    data = (DATA / "pdflatex-4-pages.pdf").read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(PermanentError) as info:
        _extract(cut, tmp_path)
    assert info.value.code == "pdf_corrupt"


def test_non_pdf_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.pdf"
    bogus.write_text("just some text, not a PDF\n")
    with pytest.raises(PermanentError) as info:
        _extract(bogus, tmp_path)
    assert info.value.code == "not_pdf"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as info:
        _extract(tmp_path / "absent.pdf", tmp_path)
    assert info.value.code == "pdf_not_found"


def test_max_pages_processes_up_to_limit_and_flags(tmp_path: Path) -> None:
    result = _extract(DATA / "pdflatex-4-pages.pdf", tmp_path, max_pages=2)
    assert (result.pages, result.pages_processed, result.truncated) == (4, 2, True)
    assert [p["page"] for p in _lines(tmp_path / "pages.jsonl")] == [1, 2]
    exact = _extract(DATA / "pdflatex-4-pages.pdf", tmp_path, max_pages=4)
    assert not exact.truncated


def test_chunks_reference_pages_and_respect_size(tmp_path: Path) -> None:
    result = _extract(DATA / "pdflatex-4-pages.pdf", tmp_path, chunk_chars=500)
    pages = {p["page"]: p["text"] for p in _lines(tmp_path / "pages.jsonl")}
    chunks = _lines(tmp_path / "chunks.jsonl")
    assert len(chunks) == result.chunks > 4
    assert [c["chunk"] for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert 0 < len(c["text"]) <= 500
        assert pages[c["page"]][c["start"] : c["end"]] == c["text"]


def test_progress_reported_per_page(tmp_path: Path) -> None:
    calls: list[tuple[float, str]] = []
    _extract(DATA / "pdflatex-4-pages.pdf", tmp_path, on_progress=lambda f, m: calls.append((f, m)))
    assert calls == [(0.25, "page 1/4"), (0.5, "page 2/4"), (0.75, "page 3/4"), (1.0, "page 4/4")]


def _pdf_with_textless_pages(path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.cell(text="A page with real text on it.")
    pdf.add_page()  # left empty
    pdf.add_page()
    pdf.rect(20, 20, 100, 150, style="F")  # drawn content only, as a scan would be an image
    pdf.output(str(path))


def test_pages_without_text_are_flagged_scanned(tmp_path: Path) -> None:
    source = tmp_path / "mixed.pdf"
    _pdf_with_textless_pages(source)
    result = _extract(source, tmp_path)
    assert result.scanned_pages == [2, 3]
    assert result.scanned_count == 2
    flags = [p["scanned"] for p in _lines(tmp_path / "pages.jsonl")]
    assert flags == [False, True, True]


def test_parallel_threads_share_pdfium_safely(tmp_path: Path) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        out = tmp_path / str(n)
        out.mkdir()
        try:
            for _ in range(5):
                results.append(_extract(DATA / "pdflatex-outline.pdf", out).chars)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    assert len(set(results)) == 1


# --- the raw text API and the process pool --------------------------------------------------

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # has Old Italic and emoji
NON_BMP = "Old Italic \U00010300\U00010301\U00010302, emoji \U0001f42d\U0001f625."


@pytest.mark.skipif(not FONT.is_file(), reason=f"{FONT} not installed")
def test_text_outside_the_bmp_survives(tmp_path: Path) -> None:
    make_astral_pdf(tmp_path / "astral.pdf", 1)
    _extract(tmp_path / "astral.pdf", tmp_path)
    assert _lines(tmp_path / "pages.jsonl")[0]["text"] == f"1: {NON_BMP}"
    assert all(NON_BMP in c["text"] for c in _lines(tmp_path / "chunks.jsonl"))


def make_astral_pdf(path: Path, pages: int) -> None:
    """Pages whose text has characters outside the BMP (the children's path is tested in
    tests/tasks/test_pdf_children.py)."""
    pdf = FPDF()
    pdf.add_font("dejavu", fname=str(FONT))
    pdf.set_font("dejavu", size=12)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.cell(text=f"{number}: {NON_BMP}")
    pdf.output(str(path))


def _make_long_pdf(path: Path, pages: int) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    for number in range(1, pages + 1):
        pdf.add_page()
        if number % 10 == 0:
            continue  # a textless page now and then
        for line in range(number % 7 + 1):
            words = " ".join(f"word{number}x{line}y{w}" for w in range(12))
            pdf.multi_cell(0, 5, text=words, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
