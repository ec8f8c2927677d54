"""Page ranges of a large PDF, for child processes that each read their own copy of it.

A child keeps the document of its last range open for the next range of the same file:
opening it again would cost more than its pages' share (pdfium loads the fonts anew on the
first page it reads: ~9 ms against ~0.7 ms a page). The task that hands out the ranges
calls :func:`release_kept` in each child it used once the document is done.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from jobrunner.errors import PermanentError
from jobrunner.pipelines.pdf_pages import Page, render_page
from jobrunner.pipelines.pdfium_doc import close_pdf, open_pdf, page_text

__all__ = ["RANGE_MAX", "RANGE_MIN", "ranges", "read_range", "release_kept"]

RANGE_MIN, RANGE_MAX = 16, 256  # pages a range, see ranges()


def ranges(limit: int, processes: int) -> list[tuple[int, int]]:
    """Page ranges that shrink towards the end (guided scheduling): the big ones first keep
    the cost of opening the document in a process low, the small last ones keep the processes
    finishing together instead of one waiting on the other's last range."""
    out: list[tuple[int, int]] = []
    start = 0
    while start < limit:
        size = (limit - start) // (2 * processes)
        size = max(RANGE_MIN, min(RANGE_MAX, size))
        out.append((start, min(start + size, limit)))
        start += size
    return out


def read_range(
    path: str, password: str | None, start: int, stop: int, chunk_chars: int
) -> list[Page]:
    """Pages ``start`` to ``stop - 1`` (0-based), from this process's kept copy."""
    try:
        doc = _kept_document(path, password)
        return [render_page(i + 1, page_text(doc, i), chunk_chars) for i in range(start, stop)]
    except PermanentError:
        release_kept()
        raise


class _Kept(NamedTuple):
    key: tuple[str, int, int, int, str | None]  # path, inode, size, mtime, password
    doc: Any


# Child processes only (the worker never calls read_range): at most one open document.
_KEPT: list[_Kept] = []


def _kept_document(path: str, password: str | None) -> Any:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PermanentError(f"cannot read {Path(path).name}: {exc}", code="pdf_not_found") from exc
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns, password)
    if _KEPT and _KEPT[0].key == key:
        return _KEPT[0].doc
    release_kept()
    doc = open_pdf(Path(path), password)
    _KEPT.append(_Kept(key, doc))
    return doc


def release_kept() -> None:
    """Close the kept document, if any (the file it was read from may then be removed)."""
    while _KEPT:
        close_pdf(_KEPT.pop().doc)
