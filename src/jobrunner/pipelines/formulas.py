"""Cells a spreadsheet would run as formulas (CSV injection), as OWASP describes them.

A cell is *formula-like* when, past leading spaces and line feeds, it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, unless it is a plain number (``-12,5``,
``+3``, ``1e-3``: a spreadsheet reads those as numbers, and mangling prices would be a bug).
Outputs are *neutralised* by a leading ``'``, which spreadsheets take as "this is text".
"""

from __future__ import annotations

import re

import polars as pl

__all__ = [
    "formula_like",
    "guard_frame",
    "is_formula_like",
    "live_formula",
    "neutralised",
    "safe_cell",
]

_LEAD = " \n"
_TRIGGER = r"^[=+\-@\t\r]"
_LIVE = r"^[=+\-@]"  # what a spreadsheet runs as typed, without trimming
PLAIN_NUMBER = r"^[+-]?(?:\d+(?:[.,]\d+)*[.,]?|[.,]\d+)(?:[eE][+-]?\d+)?$"
_TRIGGER_RE = re.compile(_TRIGGER)
_PLAIN_NUMBER_RE = re.compile(PLAIN_NUMBER)


def formula_like(c: pl.Expr) -> pl.Expr:
    """True where the text is formula-like (null stays null)."""
    lead = c.str.strip_chars_start(_LEAD)
    return lead.str.contains(_TRIGGER) & ~lead.str.contains(PLAIN_NUMBER)


def live_formula(c: pl.Expr) -> pl.Expr:
    """True where a spreadsheet would run the text exactly as it is (no leading space)."""
    return c.str.contains(_LIVE) & ~c.str.contains(PLAIN_NUMBER)


def neutralised(c: pl.Expr) -> pl.Expr:
    """The text with a ``'`` in front where it is formula-like."""
    return pl.when(formula_like(c).fill_null(False)).then(pl.lit("'") + c).otherwise(c)


def guard_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell and column name of ``frame`` neutralised."""
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if texts:
        frame = frame.with_columns(neutralised(pl.col(n)).alias(n) for n in texts)
    return frame.rename({n: safe_cell(n) for n in frame.columns if is_formula_like(n)})


def is_formula_like(text: str) -> bool:
    """``formula_like`` for one Python string."""
    lead = text.lstrip(_LEAD)
    return bool(_TRIGGER_RE.match(lead)) and not _PLAIN_NUMBER_RE.fullmatch(lead)


def safe_cell(text: str) -> str:
    """One Python string neutralised."""
    return f"'{text}" if is_formula_like(text) else text
