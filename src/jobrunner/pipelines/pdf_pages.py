"""Pages of a PDF made ready to write (text, JSON lines, chunks) and the writer of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple

from jobrunner.pipelines.pdf_text import chunk_spans

__all__ = ["Page", "PageWriter", "render_page"]


class Page(NamedTuple):
    """One page made ready to write: its JSON line and its chunks' lines minus the chunk
    number (only the writer knows it), built where the text was read, so that child
    processes also do the JSON encoding and the parent only writes."""

    number: int
    chars: int
    scanned: bool
    line: str
    chunk_tails: list[str]


def render_page(number: int, text: str, chunk_chars: int) -> Page:
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
    return Page(number, len(text), scanned, json.dumps(row, ensure_ascii=False), tails)


class PageWriter:
    """Writes pages in order to the pages and chunks JSON lines files, keeping totals; a
    context manager (the files are closed on exit)."""

    def __init__(
        self,
        pages_out: Path,
        chunks_out: Path,
        limit: int,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> None:
        self.limit = limit
        self.on_progress = on_progress
        self.chars = 0
        self.chunks = 0
        self.scanned: list[int] = []
        self._pages: IO[str] = pages_out.open("w", encoding="utf-8")
        self._chunks: IO[str] = chunks_out.open("w", encoding="utf-8")

    def write(self, pages: Iterable[Page]) -> None:
        for page in pages:
            if page.scanned:
                self.scanned.append(page.number)
            self.chars += page.chars
            self._pages.write(page.line + "\n")
            for tail in page.chunk_tails:
                self._chunks.write(f'{{"chunk": {self.chunks}, {tail}\n')
                self.chunks += 1
            if self.on_progress is not None:
                number = page.number
                self.on_progress(number / self.limit, f"page {number}/{self.limit}")

    def __enter__(self) -> PageWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._pages.close()
        self._chunks.close()
