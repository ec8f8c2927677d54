"""Bounds a CSV must keep before polars reads it: line length and header width.

polars cannot split a record across its threads, so one 200 MB line is parsed in one piece
(at ~32x its size); a header of a million columns turns every plan into a million
expressions. Both are refused first, each with its own code.
"""

from __future__ import annotations

import mmap
from pathlib import Path

from jobrunner.errors import PermanentError

__all__ = ["check_columns", "check_lines"]


def check_lines(path: Path, max_bytes: int) -> None:
    """PermanentError ``line_too_long`` if any line of ``path`` is longer than ``max_bytes``.

    Costs next to nothing on a normal file: it looks for a line break in every window of
    ``max_bytes / 2`` (mapped, so only the few bytes up to each break are read). A line
    longer than ``max_bytes`` holds such a window whole; only a window without a break is
    measured exactly.
    """
    size = path.stat().st_size
    if size <= max_bytes:
        return
    window = max(max_bytes // 2, 1)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        for pos in range(0, size - window + 1, window):
            if mapped.find(b"\n", pos, pos + window) != -1:
                continue
            start = mapped.rfind(b"\n", 0, pos) + 1
            stop = mapped.find(b"\n", pos + window)
            length = (size if stop == -1 else stop) - start
            if length > max_bytes:
                row = _line_number(mapped, start)
                raise PermanentError(
                    f"line {row} is {length:,} bytes long; at most {max_bytes:,} are allowed",
                    code="line_too_long",
                    row=row,
                    limit=max_bytes,
                )


def _line_number(mapped: mmap.mmap, offset: int) -> int:
    """1-based number of the line starting at ``offset`` (only on the failure path)."""
    lines, pos, step = 1, 0, 16 * 1024 * 1024
    while pos < offset:
        end = min(pos + step, offset)
        lines += mapped[pos:end].count(b"\n")
        pos = end
    return lines


def check_columns(header: list[str], max_columns: int) -> None:
    """PermanentError ``too_many_columns`` when the header has more than ``max_columns``."""
    if len(header) > max_columns:
        raise PermanentError(
            f"the header has {len(header):,} columns; at most {max_columns:,} are allowed",
            code="too_many_columns",
            columns=len(header),
            limit=max_columns,
        )
