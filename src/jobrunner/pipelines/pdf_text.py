"""Pure text helpers for PDF extraction: newline clean-up, chunk boundaries, PDF dates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["chunk_spans", "normalise_text", "pdf_date"]

# Breaking on a paragraph, then a line, then a word keeps chunks readable; a break is only
# taken in the second half of the window so chunks do not shrink to crumbs.
_SEPARATORS = ("\n\n", "\n", " ")

_SPACE = re.compile(r"\s*")
_PDF_DATE = re.compile(
    r"^(?:D:)?(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?P<tz>Z|[+-]\d{2}'?(?:\d{2}'?)?)?"
)

_FIELDS = (("y", 1), ("mo", 1), ("d", 1), ("h", 0), ("mi", 0), ("s", 0))


def normalise_text(text: str) -> str:
    """pdfium ends lines with CRLF and may leave NULs or U+FFFE (a noncharacter it uses for
    some unmapped glyphs); downstream wants plain LF text. Each pass only runs when needed."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            text = text.replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    if "\ufffe" in text:
        text = text.replace("\ufffe", "")
    return text


def chunk_spans(text: str, size: int) -> list[tuple[int, int]]:
    """(start, end) offsets of chunks of at most ``size`` chars, cut at natural breaks."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    spans: list[tuple[int, int]] = []
    n = len(text)
    start = _skip_space(text, 0)
    while start < n:
        end = min(start + size, n)
        if end < n:
            end = _break_point(text, start, end, size)
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        spans.append((start, stop))
        start = _skip_space(text, end)
    return spans


def _skip_space(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _break_point(text: str, start: int, end: int, size: int) -> int:
    floor = start + size // 2
    for sep in _SEPARATORS:
        found = text.rfind(sep, floor, end)
        if found != -1:
            return found + len(sep)
    return end


def pdf_date(value: str | None) -> str | None:
    """A PDF date (``D:YYYYMMDDHHmmSS+HH'mm'``) as ISO 8601; unparseable input is kept as is."""
    if not value:
        return None
    m = _PDF_DATE.match(value.strip())
    if m is None:
        return value
    y, mo, d, h, mi, s = (int(m[k]) if m[k] else low for k, low in _FIELDS)
    try:
        moment = datetime(y, mo, d, h, mi, s, tzinfo=_tz(m["tz"]))
    except ValueError:
        return value
    return moment.isoformat()


def _tz(text: str | None) -> timezone | None:
    if not text:
        return None  # a PDF date without an offset is local time of unknown zone
    if text == "Z":
        return UTC
    digits = text[1:].replace("'", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(-offset if text[0] == "-" else offset)
