"""pdfium, one call at a time per process: opening and closing documents, reading a page's text."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from jobrunner.errors import PermanentError
from jobrunner.pipelines.pdf_text import normalise_text

__all__ = ["PDFIUM_LOCK", "close_pdf", "open_document", "open_pdf", "page_text"]

# PDFium keeps process-wide state and is not thread-safe, even across distinct documents, so
# within one process every call into it, from any thread, is serialised on this one lock. It
# is taken per page rather than per document so that concurrent jobs interleave instead of
# queueing behind a long document. The lock is only released with no pdfium object
# mid-operation. Child processes each have their own pdfium (and their own copy of the lock).
PDFIUM_LOCK = threading.Lock()


@contextmanager
def open_document(path: Path, password: str | None) -> Iterator[Any]:
    doc = open_pdf(path, password)
    try:
        yield doc
    finally:
        close_pdf(doc)


def open_pdf(path: Path, password: str | None) -> Any:
    try:
        with PDFIUM_LOCK:
            return pdfium.PdfDocument(path, password=password)
    except pdfium.PdfiumError as exc:
        raise _open_error(path, password, exc) from exc


def close_pdf(doc: Any) -> None:
    # Close explicitly under the lock: left to the garbage collector, pypdfium2 would close it
    # from whichever thread happens to collect it, outside the lock.
    with PDFIUM_LOCK:
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


def page_text(doc: Any, index: int) -> str:
    with PDFIUM_LOCK:
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
