"""Text to typed values as polars expressions (null where the text is not such a value)."""

from __future__ import annotations

import polars as pl

URL = r"^https?://[^\s/$.?#][^\s]*$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
TRUTHY = ["true", "false", "1", "0", "yes", "no", "sim", "não", "nao", "y", "n"]
_EUROPEAN = r"^-?\d{1,3}(\.\d{3})+(,\d+)?$|^-?\d+,\d+$"  # 1.234,56 or 12,5
_US_THOUSANDS = r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"  # 1,234.56
_PLAIN = r"^-?\d+(\.\d+)?$"


def empty(c: pl.Expr) -> pl.Expr:
    return c.is_null() | (c.str.strip_chars() == "")


def decimal_text(c: pl.Expr) -> pl.Expr:
    """'1.234,56', '1,234.56' and '1234.56' all as '1234.56'; anything else null."""
    s = c.str.strip_chars()
    return (
        pl.when(s.str.contains(_EUROPEAN))
        .then(s.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .when(s.str.contains(_US_THOUSANDS))
        .then(s.str.replace_all(",", "", literal=True))
        .when(s.str.contains(_PLAIN))
        .then(s)
        .otherwise(None)
    )


def as_decimal(c: pl.Expr) -> pl.Expr:
    return decimal_text(c).cast(pl.Float64, strict=False)


def as_int(c: pl.Expr) -> pl.Expr:
    s = c.str.strip_chars()
    return pl.when(s.str.contains(r"^-?\d+$")).then(s).cast(pl.Int64, strict=False)


def as_date(c: pl.Expr) -> pl.Expr:
    s = c.str.strip_chars()
    return pl.coalesce(
        s.str.to_date("%Y-%m-%d", strict=False), s.str.to_date("%d/%m/%Y", strict=False)
    )


def gtin_valid(c: pl.Expr) -> pl.Expr:
    """8, 12, 13 or 14 digits with a correct GS1 check digit, computed column-wise."""
    s = c.str.strip_chars()
    padded = s.str.zfill(14)
    # weights from the left on a 14-digit GTIN: 3,1,3,1,... for the first 13 digits
    total = pl.sum_horizontal(
        [
            padded.str.slice(i, 1).cast(pl.Int32, strict=False) * (3 if i % 2 == 0 else 1)
            for i in range(13)
        ]
    )
    check = padded.str.slice(13, 1).cast(pl.Int32, strict=False)
    shape = s.str.contains(r"^(\d{8}|\d{12,14})$")
    return shape & (((10 - total % 10) % 10) == check)


def valid_of_type(c: pl.Expr, kind: str) -> pl.Expr:
    """True where a non-empty value has the right shape for ``kind``."""
    s = c.str.strip_chars()
    shapes = {
        "int": as_int(c).is_not_null(),
        "decimal": as_decimal(c).is_not_null(),
        "bool": s.str.to_lowercase().is_in(TRUTHY),
        "date": as_date(c).is_not_null(),
        "url": s.str.contains(URL),
        "email": s.str.contains(EMAIL),
        "gtin": gtin_valid(c),
    }
    return shapes.get(kind, pl.lit(True))


def list_items(c: pl.Expr) -> pl.Expr:
    """A list column ('a, b | c') as a list of trimmed, non-empty items."""
    parts = c.str.replace_all(r"[|;]", ",").str.split(",")
    return parts.list.eval(pl.element().str.strip_chars()).list.eval(
        pl.element().filter(pl.element() != "")
    )
