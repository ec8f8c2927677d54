"""The second reader, for files pdfium refuses: pypdf (pure Python). It rebuilds a broken
cross-reference table or trailer by scanning the file, which is what most "corrupt" PDFs
that other viewers open need. Slower than pdfium, so only ever the fallback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, LimitReachedError, WrongPasswordError

from jobrunner.errors import PermanentError
from jobrunner.pipelines.compressed import decompressed
from jobrunner.pipelines.limits import InputLimits, too_large
from jobrunner.pipelines.pdf import (
    MAX_OUTLINE,
    OutlineEntry,
    PdfInfo,
    PdfMetadata,
    PdfResult,
    check_header,
    check_pages,
    pdf_result,
)
from jobrunner.pipelines.pdf_pages import Page, PageWriter, render_page
from jobrunner.pipelines.pdf_streams import check_streams
from jobrunner.pipelines.pdf_text import normalise_text, pdf_date

__all__ = ["extract_with_pypdf"]


def extract_with_pypdf(
    path: Path,
    *,
    password: str | None,
    max_pages: int | None,
    pages_out: Path,
    chunks_out: Path,
    chunk_chars: int = 2000,
    on_progress: Callable[[float, str], None] | None = None,
    limits: InputLimits | None = None,
) -> PdfResult:
    """As extract_pdf, read by pypdf (``reader`` is ``pypdf``). Raises PermanentError
    ``pdf_corrupt`` when pypdf cannot read it either, and the codes of extract_pdf."""
    limits = limits or InputLimits()
    if not path.is_file():
        raise PermanentError(f"no such file: {path.name}", code="pdf_not_found")
    plain = decompressed(path, pages_out.parent, max_bytes=limits.max_decompressed_bytes)
    check_header(plain)
    check_streams(plain, limits.pdf_max_stream_bytes)
    reader, info = _guarded(plain, limits, lambda: _inspect(plain, password, max_pages))
    check_pages(info.limit, limits.pdf_max_pages)
    pages = _pages(reader, info.limit, chunk_chars, plain, limits)
    with PageWriter(pages_out, chunks_out, info.limit, on_progress) as writer:
        writer.write(pages)
    return pdf_result(info, writer, pages_out, chunks_out, reader="pypdf")


def _inspect(path: Path, password: str | None, max_pages: int | None) -> tuple[Any, PdfInfo]:
    reader = PdfReader(path, strict=False, password=password)
    total = len(reader.pages)
    outline, truncated = _outline(reader)
    info = PdfInfo(
        path=str(path),
        pages=total,
        limit=total if max_pages is None else max(0, min(total, max_pages)),
        encrypted=bool(reader.is_encrypted),
        metadata=_metadata(reader),
        outline=outline,
        outline_truncated=truncated,
    )
    return reader, info


def _pages(
    reader: Any, limit: int, chunk_chars: int, path: Path, limits: InputLimits
) -> Iterator[Page]:
    for index in range(limit):

        def text(index: int = index) -> str:
            return str(reader.pages[index].extract_text() or "")

        yield render_page(index + 1, normalise_text(_guarded(path, limits, text)), chunk_chars)


def _guarded(path: Path, limits: InputLimits, read: Callable[[], Any]) -> Any:
    """``read()`` with pypdf's failures as our codes. pypdf meets hostile files with many
    kinds of exception (KeyError, ValueError, RecursionError...), all of which mean that it
    cannot read this file either."""
    try:
        return read()
    except FileNotDecryptedError as exc:
        raise PermanentError(
            f"{path.name} is encrypted: needs a password", code="pdf_encrypted"
        ) from exc
    except WrongPasswordError as exc:
        raise PermanentError(
            f"{path.name} is encrypted: wrong password", code="pdf_encrypted"
        ) from exc
    except LimitReachedError as exc:
        raise too_large("a stream of the PDF, inflated,", limits.pdf_max_stream_bytes) from exc
    except MemoryError:
        raise
    except Exception as exc:
        _corrupt(path, exc)


def _corrupt(path: Path, exc: Exception) -> NoReturn:
    why = f"{type(exc).__name__}: {exc}"
    message = f"{path.name} is corrupt: neither pdfium nor pypdf can read it ({why})"
    raise PermanentError(message, code="pdf_corrupt") from exc


def _metadata(reader: Any) -> PdfMetadata:
    meta = reader.metadata or {}

    def value(key: str) -> str | None:
        raw = meta.get(key)
        return str(raw).strip() or None if raw is not None else None

    return PdfMetadata(
        title=value("/Title"),
        author=value("/Author"),
        producer=value("/Producer"),
        creation_date=pdf_date(value("/CreationDate")),
    )


def _outline(reader: Any) -> tuple[list[OutlineEntry], bool]:
    entries: list[OutlineEntry] = []
    stack: list[tuple[list[Any], int]] = [(list(reader.outline), 0)]
    while stack:
        items, level = stack.pop()
        for position, item in enumerate(items):
            if isinstance(item, list):  # the children of the entry before it
                stack.append((items[position + 1 :], level))
                stack.append((item, level + 1))
                break
            if len(entries) >= MAX_OUTLINE:
                return entries, True
            entries.append(
                OutlineEntry(title=str(item.title), page=_page_of(reader, item), level=level)
            )
    return entries, False


def _page_of(reader: Any, item: Any) -> int | None:
    try:
        index = reader.get_destination_page_number(item)
    except Exception:  # a destination pointing nowhere readable
        return None
    return None if index is None or index < 0 else index + 1
