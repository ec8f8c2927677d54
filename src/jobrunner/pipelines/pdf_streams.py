"""A PDF's compressed streams measured before pdfium inflates them (decompression bombs).

Only Flate streams that could inflate past the cap are inflated here, and only to count:
deflate cannot expand more than ~1032 times, so a stream whose compressed bytes times that
stays under the cap is skipped unread (every stream of an ordinary document). Image streams
are skipped too: extracting text never decodes them.
"""

from __future__ import annotations

import mmap
import zlib
from pathlib import Path

from jobrunner.pipelines.limits import too_large

__all__ = ["check_streams"]

_MAX_RATIO = 1032  # deflate's largest expansion
_DICT_WINDOW = 2048  # how far back a stream's dictionary is looked for
_CHUNK = 1024 * 1024


def check_streams(path: Path, max_bytes: int) -> None:
    """PermanentError ``input_too_large`` if a Flate stream of ``path`` inflates past
    ``max_bytes``. A stream that does not inflate at all is left to the reader to judge."""
    size = path.stat().st_size
    if size * _MAX_RATIO <= max_bytes or size == 0:
        return
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0
        while (start := data.find(b"stream", pos)) != -1:
            if data[max(0, start - 3) : start] == b"end":
                pos = start + 6
                continue
            body = start + (8 if data[start + 6 : start + 8] == b"\r\n" else 7)
            end = data.find(b"endstream", body)
            end = size if end == -1 else end
            if (end - body) * _MAX_RATIO > max_bytes and _inflated(data, start):
                _measure(data, body, end, max_bytes)
            pos = end + 9


def _inflated(data: mmap.mmap, start: int) -> bool:
    """The dictionary before the stream at ``start`` names FlateDecode and is no image's."""
    window = data[max(0, start - _DICT_WINDOW) : start]
    window = window[window.rfind(b"obj") + 1 :]
    named = b"/FlateDecode" in window or b"/Fl " in window or b"/Fl]" in window
    return named and b"/Image" not in window


def _measure(data: mmap.mmap, body: int, end: int, max_bytes: int) -> None:
    inflater = zlib.decompressobj()
    total = 0
    try:
        for offset in range(body, end, _CHUNK):
            pending = data[offset : min(offset + _CHUNK, end)]
            while pending and not inflater.eof:
                total += len(inflater.decompress(pending, _CHUNK))
                if total > max_bytes:
                    raise too_large("a stream of the PDF, inflated,", max_bytes)
                pending = inflater.unconsumed_tail
            if inflater.eof:
                return
    except zlib.error:
        return
