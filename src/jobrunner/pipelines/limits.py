"""Bounds on what one pipeline input may make us read: each has its own error code."""

from __future__ import annotations

from dataclasses import dataclass

from jobrunner.errors import PermanentError

__all__ = ["InputLimits", "too_large"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """Defaults match the settings'. ``max_decompressed_bytes``: what a gzip/zip/zstd input
    may inflate to (``input_too_large``); ``max_columns`` (``too_many_columns``) and
    ``max_line_bytes`` (``line_too_long``) for CSV; ``pdf_max_pages`` (``pdf_too_many_pages``)
    and ``pdf_max_stream_bytes`` (``input_too_large``) for PDF."""

    max_decompressed_bytes: int = 2048 * MIB
    max_columns: int = 2000
    max_line_bytes: int = MIB
    pdf_max_pages: int = 10_000
    pdf_max_stream_bytes: int = 256 * MIB


def too_large(what: str, limit: int, **details: object) -> PermanentError:
    """The ``input_too_large`` error: ``what`` is over ``limit`` bytes."""
    return PermanentError(
        f"{what} is larger than the {limit:,}-byte limit",
        code="input_too_large",
        limit=limit,
        **details,
    )
