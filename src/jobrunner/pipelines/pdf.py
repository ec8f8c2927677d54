"""PDF text extraction with pdfium: metadata, outline, text per page and chunks for indexing.

Synchronous and CPU-bound: the task adapter runs :func:`extract_pdf` in a thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pydantic import BaseModel

from jobrunner.errors import PermanentError
from jobrunner.pipelines.pdf_text import chunk_spans, normalise_text, pdf_date

__all__ = ["OutlineEntry", "PdfMetadata", "PdfResult", "extract_pdf"]

# PDFium keeps process-wide state and is not thread-safe, even across distinct documents, so
# every call into it, from any thread, is serialised on this one lock. It is taken per page
# rather than per document so that concurrent jobs interleave instead of queueing behind a
# long document; a process pool would scale further but costs a process per worker and a
# copy of every result. The lock is only released with no pdfium object mid-operation.
_PDFIUM_LOCK = threading.Lock()

MAX_OUTLINE = 1000  # keeps the job result bounded for documents with huge bookmark trees
MAX_SCANNED_LISTED = 1000  # idem for the list of scanned page numbers
_HEADER_WINDOW = 1024  # the spec lets "%PDF-" start anywhere in the first 1024 bytes


class OutlineEntry(BaseModel):
    """One bookmark: 1-based page (None when it points nowhere) and 0-based nesting level."""

    title: str
    page: int | None
    level: int


class PdfMetadata(BaseModel):
    """The document information entries we report; empty values become None."""

    title: str | None = None
    author: str | None = None
    producer: str | None = None
    creation_date: str | None = None


class PdfResult(BaseModel):
    """What :func:`extract_pdf` found; the page texts and chunks are in the JSON lines files."""

    pages: int
    pages_processed: int
    truncated: bool
    encrypted: bool
    metadata: PdfMetadata
    outline: list[OutlineEntry]
    outline_truncated: bool
    scanned_pages: list[int]
    scanned_count: int
    chars: int
    chunks: int
    pages_out: str
    chunks_out: str


def extract_pdf(
    path: Path,
    *,
    password: str | None,
    max_pages: int | None,
    pages_out: Path,
    chunks_out: Path,
    chunk_chars: int = 2000,
    on_progress: Callable[[float, str], None] | None = None,
) -> PdfResult:
    """Extract one PDF; pages go to ``pages_out`` and chunks to ``chunks_out`` as JSON lines.

    Raises PermanentError with code ``not_pdf``, ``pdf_corrupt``, ``pdf_encrypted`` or
    ``pdf_not_found``.
    """
    _check_header(path)
    with _open_document(path, password) as doc:
        with _PDFIUM_LOCK:
            total = len(doc)
            encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(doc) != -1
            metadata = _metadata(doc)
            outline, outline_truncated = _outline(doc)
        limit = total if max_pages is None else max(0, min(total, max_pages))
        stats = _write_pages(doc, limit, chunk_chars, pages_out, chunks_out, on_progress)
    return PdfResult(
        pages=total,
        pages_processed=limit,
        truncated=limit < total,
        encrypted=encrypted,
        metadata=metadata,
        outline=outline,
        outline_truncated=outline_truncated,
        scanned_pages=stats.scanned[:MAX_SCANNED_LISTED],
        scanned_count=len(stats.scanned),
        chars=stats.chars,
        chunks=stats.chunks,
        pages_out=str(pages_out),
        chunks_out=str(chunks_out),
    )


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_WINDOW)
    except FileNotFoundError:
        raise PermanentError(f"no such file: {path.name}", code="pdf_not_found") from None
    if b"%PDF-" not in head:
        raise PermanentError(f"{path.name} is not a PDF (no %PDF- header)", code="not_pdf")


@contextmanager
def _open_document(path: Path, password: str | None) -> Iterator[Any]:
    try:
        with _PDFIUM_LOCK:
            doc = pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        raise _open_error(path, password, exc) from exc
    try:
        yield doc
    finally:
        # Close explicitly under the lock: left to the garbage collector, pypdfium2 would
        # close it from whichever thread happens to collect it, outside the lock.
        with _PDFIUM_LOCK:
            doc.close()


def _open_error(path: Path, password: str | None, exc: Any) -> PermanentError:
    code = getattr(exc, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        why = "needs a password" if password is None else "wrong password"
        return PermanentError(f"{path.name} is encrypted: {why}", code="pdf_encrypted")
    if code == pdfium_c.FPDF_ERR_SECURITY:
        msg = f"{path.name} uses an unsupported security handler"
        return PermanentError(msg, code="pdf_encrypted")
    return PermanentError(f"{path.name} is corrupt or truncated: {exc}", code="pdf_corrupt")


def _metadata(doc: Any) -> PdfMetadata:
    def value(key: str) -> str | None:
        return str(doc.get_metadata_value(key)).strip() or None

    return PdfMetadata(
        title=value("Title"),
        author=value("Author"),
        producer=value("Producer"),
        creation_date=pdf_date(value("CreationDate")),
    )


def _outline(doc: Any) -> tuple[list[OutlineEntry], bool]:
    entries: list[OutlineEntry] = []
    for bookmark in doc.get_toc():
        if len(entries) >= MAX_OUTLINE:
            return entries, True
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        page = index + 1 if index is not None else None
        entries.append(OutlineEntry(title=bookmark.get_title(), page=page, level=bookmark.level))
    return entries, False


class _Stats:
    """Running totals while pages are written."""

    def __init__(self) -> None:
        self.chars = 0
        self.chunks = 0
        self.scanned: list[int] = []


def _write_pages(
    doc: Any,
    limit: int,
    chunk_chars: int,
    pages_out: Path,
    chunks_out: Path,
    on_progress: Callable[[float, str], None] | None,
) -> _Stats:
    stats = _Stats()
    with (
        pages_out.open("w", encoding="utf-8") as pages_f,
        chunks_out.open("w", encoding="utf-8") as chunks_f,
    ):
        for index in range(limit):
            number = index + 1
            text = _page_text(doc, index)
            _record_page(stats, number, text, chunk_chars, pages_f, chunks_f)
            if on_progress is not None:
                # Outside the lock: the callback may be slow (it reports to Redis).
                on_progress(number / limit, f"page {number}/{limit}")
    return stats


def _record_page(
    stats: _Stats, number: int, text: str, chunk_chars: int, pages_f: IO[str], chunks_f: IO[str]
) -> None:
    scanned = not text.strip()
    if scanned:
        stats.scanned.append(number)
    stats.chars += len(text)
    row = {"page": number, "text": text, "chars": len(text), "scanned": scanned}
    pages_f.write(json.dumps(row, ensure_ascii=False) + "\n")
    for start, end in chunk_spans(text, chunk_chars):
        chunk = {
            "chunk": stats.chunks,
            "page": number,
            "start": start,
            "end": end,
            "text": text[start:end],
        }
        chunks_f.write(json.dumps(chunk, ensure_ascii=False) + "\n")
        stats.chunks += 1


def _page_text(doc: Any, index: int) -> str:
    with _PDFIUM_LOCK:
        try:
            raw = _read_page(doc, index)
        except pdfium.PdfiumError as exc:
            msg = f"page {index + 1} cannot be read: {exc}"
            raise PermanentError(msg, code="pdf_corrupt") from exc
    return normalise_text(raw)


def _read_page(doc: Any, index: int) -> str:
    page = doc[index]
    try:
        textpage = page.get_textpage()
        try:
            # get_text_bounded covers all of Unicode; get_text_range is limited to UCS-2.
            return str(textpage.get_text_bounded())
        finally:
            textpage.close()
    finally:
        page.close()
