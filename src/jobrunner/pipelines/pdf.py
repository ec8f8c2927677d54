"""PDF text extraction with pdfium: metadata, outline, text per page and chunks for indexing.

Synchronous and CPU-bound: the task adapter runs :func:`extract_pdf` in a thread. Documents
of :data:`POOL_MIN_PAGES` pages or more are read by a persistent process pool (see
:func:`close_pdf_pool`); smaller ones in the calling process.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pydantic import BaseModel

from jobrunner.errors import PermanentError, TransientError
from jobrunner.pipelines.pdf_text import chunk_spans, normalise_text, pdf_date

__all__ = [
    "POOL_MIN_PAGES",
    "OutlineEntry",
    "PdfMetadata",
    "PdfResult",
    "close_pdf_pool",
    "extract_pdf",
    "pool_size",
]

# PDFium keeps process-wide state and is not thread-safe, even across distinct documents, so
# within one process every call into it, from any thread, is serialised on this one lock. It
# is taken per page rather than per document so that concurrent jobs interleave instead of
# queueing behind a long document. The lock is only released with no pdfium object
# mid-operation. To use more than one core, large documents go to a process pool instead:
# each pool process has its own pdfium (and still takes its own copy of this lock).
_PDFIUM_LOCK = threading.Lock()

POOL_MIN_PAGES = 64  # below this, starting work in other processes costs more than it saves
_RANGE_MIN, _RANGE_MAX = 16, 256  # pages per pool task, see _ranges

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
    processes: int = 0,
) -> PdfResult:
    """Extract one PDF; pages go to ``pages_out`` and chunks to ``chunks_out`` as JSON lines.

    ``processes`` sizes the shared process pool used for documents of
    :data:`POOL_MIN_PAGES` pages or more (0: ``min(2, CPUs)``; 1: never use the pool).

    Raises PermanentError with code ``not_pdf``, ``pdf_corrupt``, ``pdf_encrypted`` or
    ``pdf_not_found``; TransientError ``pdf_worker_lost`` if a pool process dies.
    """
    if chunk_chars < 1:
        raise ValueError("chunk size must be at least 1")
    _check_header(path)
    with _open_document(path, password) as doc:
        with _PDFIUM_LOCK:
            total = len(doc)
            encrypted = pdfium_c.FPDF_GetSecurityHandlerRevision(doc) != -1
            metadata = _metadata(doc)
            outline, outline_truncated = _outline(doc)
        limit = total if max_pages is None else max(0, min(total, max_pages))
        workers = pool_size(processes)
        if workers > 1 and limit >= POOL_MIN_PAGES:
            pages = _pool_pages(path, password, limit, chunk_chars, workers)
        else:
            pages = (_render_page(i + 1, _page_text(doc, i), chunk_chars) for i in range(limit))
        stats = _write_pages(pages, limit, pages_out, chunks_out, on_progress)
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
    doc = _open(path, password)
    try:
        yield doc
    finally:
        _close(doc)


def _open(path: Path, password: str | None) -> Any:
    try:
        with _PDFIUM_LOCK:
            return pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        raise _open_error(path, password, exc) from exc


def _close(doc: Any) -> None:
    # Close explicitly under the lock: left to the garbage collector, pypdfium2 would close it
    # from whichever thread happens to collect it, outside the lock.
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


class _Page(NamedTuple):
    """One page made ready to write: its JSON line and its chunks' lines minus the chunk
    number (only the writer knows it), built where the text was read, so that the pool's
    processes also do the JSON encoding and the parent only writes."""

    number: int
    chars: int
    scanned: bool
    line: str
    chunk_tails: list[str]


def _render_page(number: int, text: str, chunk_chars: int) -> _Page:
    scanned = not text or text.isspace()
    row = {"page": number, "text": text, "chars": len(text), "scanned": scanned}
    tails = [
        # json.dumps of {"chunk": n, "page": ...} is '{"chunk": n, ' + this, key order kept
        json.dumps(
            {"page": number, "start": start, "end": end, "text": text[start:end]},
            ensure_ascii=False,
        )[1:]
        for start, end in chunk_spans(text, chunk_chars)
    ]
    return _Page(number, len(text), scanned, json.dumps(row, ensure_ascii=False), tails)


def _write_pages(
    pages: Iterator[_Page],
    limit: int,
    pages_out: Path,
    chunks_out: Path,
    on_progress: Callable[[float, str], None] | None,
) -> _Stats:
    stats = _Stats()
    with (
        pages_out.open("w", encoding="utf-8") as pages_f,
        chunks_out.open("w", encoding="utf-8") as chunks_f,
    ):
        for page in pages:
            _record_page(stats, page, pages_f, chunks_f)
            if on_progress is not None:
                # Outside the lock: the callback may be slow (it reports to Redis).
                on_progress(page.number / limit, f"page {page.number}/{limit}")
    return stats


def _record_page(stats: _Stats, page: _Page, pages_f: IO[str], chunks_f: IO[str]) -> None:
    if page.scanned:
        stats.scanned.append(page.number)
    stats.chars += page.chars
    pages_f.write(page.line + "\n")
    for tail in page.chunk_tails:
        chunks_f.write(f'{{"chunk": {stats.chunks}, {tail}\n')
        stats.chunks += 1


def _page_text(doc: Any, index: int) -> str:
    with _PDFIUM_LOCK:
        raw = _read_page(doc, index)
    return normalise_text(raw)


def _read_page(doc: Any, index: int) -> str:
    # The raw API rather than PdfPage/PdfTextPage: their wrappers cost ~20% of a page here.
    page = pdfium_c.FPDF_LoadPage(doc, index)
    if not page:
        raise PermanentError(f"page {index + 1} cannot be read", code="pdf_corrupt")
    try:
        textpage = pdfium_c.FPDFText_LoadPage(page)
        if not textpage:
            raise PermanentError(f"page {index + 1} has unreadable text", code="pdf_corrupt")
        try:
            return _all_text(textpage, index)
        finally:
            pdfium_c.FPDFText_ClosePage(textpage)
    finally:
        pdfium_c.FPDF_ClosePage(page)


def _all_text(textpage: Any, index: int) -> str:
    """The page text in reading order (FPDFText_GetText over every char).

    Not limited to UCS-2, whatever older docs say: pdfium's text page keeps a character
    outside the BMP as two chars, its UTF-16 surrogates (FPDFText_GetUnicode returns each
    half), and FPDFText_GetText writes them out as such. It writes at most ``count`` units
    and the NUL; the buffer still allows two units a char so that even a pdfium that encoded
    whole code points itself could not overrun it. ~5x faster than FPDFText_GetBoundedText,
    which also drops the line break between table cells.
    """
    count = pdfium_c.FPDFText_CountChars(textpage)
    if count < 0:
        raise PermanentError(f"page {index + 1} has unreadable text", code="pdf_corrupt")
    if count == 0:
        return ""
    buffer = (ctypes.c_ushort * (2 * count + 1))()
    written = pdfium_c.FPDFText_GetText(textpage, 0, count, buffer)
    if written <= 1:
        return ""
    return bytes(memoryview(buffer)[: written - 1]).decode("utf-16-le", errors="ignore")


# --- process pool -------------------------------------------------------------------------
#
# One pool per process, created on first use and kept: starting processes and importing
# pdfium in them costs far more than a document. The start method is forkserver (spawn where
# it does not exist), never fork: the worker that calls us runs an event loop and threads, and
# a forked child could inherit a lock some other thread held at that instant.

_POOL: ProcessPoolExecutor | None = None
_POOL_PROCESSES = 0
_POOL_GUARD = threading.Lock()  # guards _POOL; never held while waiting for pool work


def pool_size(processes: int = 0) -> int:
    """Processes the pool gets for a ``processes`` setting: 0 means ``min(2, CPUs)``."""
    if processes < 0:
        raise ValueError("processes must be 0 (automatic) or more")
    return processes or min(2, os.cpu_count() or 1)


def close_pdf_pool() -> None:
    """Stop the pool's processes (waiting for work already given to them); the next large
    document starts a new pool. Call it when the worker shuts down."""
    global _POOL
    with _POOL_GUARD:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool(processes: int) -> ProcessPoolExecutor:
    global _POOL, _POOL_PROCESSES
    with _POOL_GUARD:
        if _POOL is not None and processes == _POOL_PROCESSES:
            return _POOL
        old, _POOL = _POOL, None
        if old is not None:  # another size was asked for; work already submitted still runs
            old.shutdown(wait=False)
        methods = multiprocessing.get_all_start_methods()
        method = "forkserver" if "forkserver" in methods else "spawn"
        _POOL = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_pool_process,
        )
        _POOL_PROCESSES = processes
        return _POOL


def _forget_pool(pool: ProcessPoolExecutor) -> None:
    global _POOL
    with _POOL_GUARD:
        if _POOL is pool:
            _POOL = None
    pool.shutdown(wait=False, cancel_futures=True)


def _init_pool_process() -> None:
    # The parent decides when we stop; a Ctrl-C in the terminal is for it, not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        # glibc gives freed heap back to the kernel at once, and pdfium's text page allocates
        # and frees ~1 MB per page, so every page paid for page faults (measured: FPDFText_
        # LoadPage 700 -> 460 us/page with 16 MB of top pad). Only in these processes, which
        # do nothing else; the worker process keeps the default.
        try:
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-2, 16 * 1024 * 1024)  # M_TOP_PAD
        except (OSError, AttributeError):
            pass


class _RangeError(NamedTuple):
    """A PermanentError met in a pool process, sent back as plain data."""

    code: str
    message: str


def _extract_range(
    path: str, password: str | None, start: int, stop: int, chunk_chars: int
) -> list[_Page] | _RangeError:
    """Pages ``start`` to ``stop - 1`` (0-based), in a pool process, from its own copy."""
    try:
        doc = _kept_document(path, password)
        return [_render_page(i + 1, _page_text(doc, i), chunk_chars) for i in range(start, stop)]
    except PermanentError as exc:
        _release_kept()
        return _RangeError(exc.code, exc.message)


class _Kept(NamedTuple):
    key: tuple[str, int, int, int, str | None]  # path, inode, size, mtime, password
    doc: Any


# Pool processes only: the document the last range was read from, kept open for the next
# range of the same file. Opening it again would cost more than its pages' share (pdfium
# loads the fonts anew on the first page it reads: ~9 ms against ~0.7 ms a page). It is
# closed when a range of another file comes, or when the pool stops; until then a deleted
# scratch file keeps its disk space (one file per pool process at most).
_KEPT: _Kept | None = None


def _kept_document(path: str, password: str | None) -> Any:
    global _KEPT
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PermanentError(f"cannot read {Path(path).name}: {exc}", code="pdf_not_found") from exc
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, password)
    if _KEPT is not None and _KEPT.key == key:
        return _KEPT.doc
    _release_kept()
    doc = _open(Path(path), password)
    _KEPT = _Kept(key, doc)
    return doc


def _release_kept() -> None:
    global _KEPT
    kept, _KEPT = _KEPT, None
    if kept is not None:
        _close(kept.doc)


def _ranges(limit: int, processes: int) -> list[tuple[int, int]]:
    """Page ranges that shrink towards the end (guided scheduling): the big ones first keep
    the cost of opening the document in a process low, the small last ones keep the processes
    finishing together instead of one waiting on the other's last range."""
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < limit:
        size = (limit - start) // (2 * processes)
        size = max(_RANGE_MIN, min(_RANGE_MAX, size))
        ranges.append((start, min(start + size, limit)))
        start += size
    return ranges


def _pool_pages(
    path: Path, password: str | None, limit: int, chunk_chars: int, processes: int
) -> Iterator[_Page]:
    """The first ``limit`` pages, read by the pool, yielded in page order."""
    pool = _pool(processes)
    # All ranges are queued at once: the pool runs them in order, so at most about one range
    # per process waits here out of order, and a pool swapped by another thread meanwhile
    # (see _pool) still finishes them.
    try:
        futures: list[Future[list[_Page] | _RangeError]] = [
            pool.submit(_extract_range, str(path), password, a, b, chunk_chars)
            for a, b in _ranges(limit, processes)
        ]
    except BrokenProcessPool as exc:
        _forget_pool(pool)
        raise TransientError("the PDF process pool broke", code="pdf_worker_lost") from exc
    try:
        for future in futures:
            try:
                result = future.result()
            except BrokenProcessPool as exc:
                _forget_pool(pool)  # a process died (pdfium crash, OOM kill): start afresh
                msg = f"a PDF worker process died reading {path.name}"
                raise TransientError(msg, code="pdf_worker_lost") from exc
            if isinstance(result, _RangeError):
                raise PermanentError(result.message, code=result.code)
            yield from result
    finally:
        for future in futures:
            future.cancel()  # on error or early exit; no-op for finished ones
