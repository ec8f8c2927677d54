"""PDF text extraction with pdfium: metadata, outline, text per page and chunks for indexing.

Synchronous and CPU-bound. :func:`inspect_pdf` checks a file's bounds and reads what is
read once (page count, metadata, outline); :func:`extract_pdf` does the whole document in
the calling process, falling back to pypdf when pdfium refuses the file. Large documents are
split into page ranges that child processes read (see pdf_ranges.py and the tasks that own
those processes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pypdfium2.raw as pdfium_c
from pydantic import BaseModel

from jobrunner.errors import PermanentError
from jobrunner.pipelines.compressed import decompressed
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf_pages import Page, PageWriter, render_page
from jobrunner.pipelines.pdf_streams import check_streams
from jobrunner.pipelines.pdf_text import pdf_date
from jobrunner.pipelines.pdfium_doc import PDFIUM_LOCK, open_document, page_text

__all__ = [
    "POOL_MIN_PAGES",
    "OutlineEntry",
    "PdfInfo",
    "PdfMetadata",
    "PdfResult",
    "extract_pages",
    "extract_pdf",
    "inspect_pdf",
    "pdf_result",
    "read_pages",
]

POOL_MIN_PAGES = 64  # below this, starting work in other processes costs more than it saves
MAX_OUTLINE = 1000  # keeps the job result bounded for documents with huge bookmark trees
MAX_SCANNED_LISTED = 1000  # idem for the list of scanned page numbers
_HEADER_WINDOW = 1024  # the spec lets "%PDF-" start anywhere in the first 1024 bytes
Reader = Literal["pdfium", "pypdf"]


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


class PdfInfo(BaseModel):
    """What is read once per document, before its pages; ``path`` is the file to read (an
    inflated copy when the input was compressed) and ``limit`` the pages to process."""

    path: str
    pages: int
    limit: int
    encrypted: bool
    metadata: PdfMetadata
    outline: list[OutlineEntry]
    outline_truncated: bool


class PdfResult(BaseModel):
    """What extraction found; the page texts and chunks are in the JSON lines files.
    ``reader`` names the library that read the document."""

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
    reader: Reader = "pdfium"


def extract_pdf(
    path: Path,
    *,
    password: str | None,
    max_pages: int | None,
    pages_out: Path,
    chunks_out: Path,
    chunk_chars: int = 2000,
    on_progress: Callable[[float, str], None] | None = None,
    limits: InputLimits | None = None,
    fallback: bool = True,
) -> PdfResult:
    """Extract one PDF in this process; pages go to ``pages_out`` and chunks to
    ``chunks_out`` as JSON lines (work files go beside ``pages_out``). With ``fallback``, a
    file pdfium refuses is read with pypdf (``reader`` says which did).

    Raises PermanentError ``not_pdf``, ``pdf_corrupt`` (neither reader could), ``pdf_encrypted``,
    ``pdf_not_found``, ``pdf_too_many_pages`` or ``input_too_large``.
    """
    if chunk_chars < 1:
        raise ValueError("chunk size must be at least 1")
    try:
        info = inspect_pdf(path, pages_out.parent, password, max_pages, limits)
        return extract_pages(info, password, pages_out, chunks_out, chunk_chars, on_progress)
    except PermanentError as exc:
        if not (fallback and exc.code == "pdf_corrupt"):
            raise
    from jobrunner.pipelines.pdf_fallback import extract_with_pypdf  # only when needed

    return extract_with_pypdf(
        path,
        password=password,
        max_pages=max_pages,
        pages_out=pages_out,
        chunks_out=chunks_out,
        chunk_chars=chunk_chars,
        on_progress=on_progress,
        limits=limits,
    )


def inspect_pdf(
    source: Path,
    work_dir: Path,
    password: str | None,
    max_pages: int | None,
    limits: InputLimits | None = None,
) -> PdfInfo:
    """Inflate the input if it is compressed, check its bounds, open it with pdfium and read
    the page count, metadata and outline."""
    limits = limits or InputLimits()
    if not source.is_file():
        raise PermanentError(f"no such file: {source.name}", code="pdf_not_found")
    path = decompressed(source, work_dir, max_bytes=limits.max_decompressed_bytes)
    check_header(path)
    check_streams(path, limits.pdf_max_stream_bytes)
    with open_document(path, password) as doc, PDFIUM_LOCK:
        total = len(doc)
        encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(doc) != -1
        metadata = _metadata(doc)
        outline, outline_truncated = _outline(doc)
    limit = total if max_pages is None else max(0, min(total, max_pages))
    check_pages(limit, limits.pdf_max_pages)
    return PdfInfo(
        path=str(path),
        pages=total,
        limit=limit,
        encrypted=encrypted,
        metadata=metadata,
        outline=outline,
        outline_truncated=outline_truncated,
    )


def extract_pages(
    info: PdfInfo,
    password: str | None,
    pages_out: Path,
    chunks_out: Path,
    chunk_chars: int,
    on_progress: Callable[[float, str], None] | None = None,
) -> PdfResult:
    """The pages of an inspected document, read and written in this process."""
    with PageWriter(pages_out, chunks_out, info.limit, on_progress) as writer:
        writer.write(read_pages(info, password, 0, info.limit, chunk_chars))
    return pdf_result(info, writer, pages_out, chunks_out)


def check_pages(limit: int, max_pages: int) -> None:
    if limit > max_pages:
        raise PermanentError(
            f"the document has {limit:,} pages to read; at most {max_pages:,} are allowed "
            "(max_pages reads the first ones)",
            code="pdf_too_many_pages",
            pages=limit,
            limit=max_pages,
        )


def pdf_result(
    info: PdfInfo, writer: PageWriter, pages_out: Path, chunks_out: Path, reader: Reader = "pdfium"
) -> PdfResult:
    return PdfResult(
        pages=info.pages,
        pages_processed=info.limit,
        truncated=info.limit < info.pages,
        encrypted=info.encrypted,
        metadata=info.metadata,
        outline=info.outline,
        outline_truncated=info.outline_truncated,
        scanned_pages=writer.scanned[:MAX_SCANNED_LISTED],
        scanned_count=len(writer.scanned),
        chars=writer.chars,
        chunks=writer.chunks,
        pages_out=str(pages_out),
        chunks_out=str(chunks_out),
        reader=reader,
    )


def read_pages(
    info: PdfInfo, password: str | None, start: int, stop: int, chunk_chars: int
) -> Iterator[Page]:
    """Pages ``start`` to ``stop - 1`` (0-based), read in this process, one at a time."""
    with open_document(Path(info.path), password) as doc:
        for index in range(start, stop):
            yield render_page(index + 1, page_text(doc, index), chunk_chars)


def check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(_HEADER_WINDOW)
    except FileNotFoundError:
        raise PermanentError(f"no such file: {path.name}", code="pdf_not_found") from None
    if b"%PDF-" not in head:
        raise PermanentError(f"{path.name} is not a PDF (no %PDF- header)", code="not_pdf")


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
