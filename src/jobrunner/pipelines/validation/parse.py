"""Text to typed values as polars expressions (null where the text is not such a value)."""

from __future__ import annotations

import polars as pl

URL = r"^https?://[^\s/$.?#][^\s]*$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
TRUTHY = ["true", "false", "1", "0", "yes", "no", "sim", "não", "nao", "y", "n"]


def empty(c: pl.Expr) -> pl.Expr:
    return c.is_null() | (c.str.strip_chars() == "")


def decimal_text(c: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    """'1.234,56', '12,5', '1,234.56' and '1234.56' all as plain '1234.56' text.

    The last separator decides: a comma with no dot after it is a decimal comma (Brazilian
    Excel), so dots before it are thousands; otherwise commas are thousands. Text that is not
    a number stays unparseable (null after the cast).
    """
    s = c if trimmed else c.str.strip_chars()
    # literal searches (memchr), no regex: this runs on every price of every row
    comma, dot = s.str.find(",", literal=True), s.str.find(".", literal=True)
    comma_decimal = comma.is_not_null() & (dot.is_null() | (dot < comma))
    return (
        pl.when(comma_decimal)
        .then(s.str.replace_many([".", ","], ["", "."]))
        .otherwise(s.str.replace_all(",", "", literal=True))
    )


def as_decimal(c: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    return decimal_text(c, trimmed=trimmed).cast(pl.Float64, strict=False)


def as_int(c: pl.Expr) -> pl.Expr:
    return c.str.strip_chars().cast(pl.Int64, strict=False)


def as_date(c: pl.Expr) -> pl.Expr:
    s = c.str.strip_chars()
    return pl.coalesce(
        s.str.to_date("%Y-%m-%d", strict=False), s.str.to_date("%d/%m/%Y", strict=False)
    )


# Weighted digit sums (weights 3,1,3,1) of every 4-digit group 0000-9999.
_GROUP_SUMS = pl.Series(
    [3 * (x // 1000) + (x // 100) % 10 + 3 * ((x // 10) % 10) + x % 10 for x in range(10_000)],
    dtype=pl.Int64,
)


def _gs1_check(n: pl.Series) -> pl.Series:
    # Left zeros weigh nothing, so the number itself is the 14-digit GTIN. Its first 12
    # digits are three 4-digit groups summed through a table (weights 3,1,3,1 each); digit 13
    # weighs 3 and digit 14 is the check digit. A dozen column operations in all.
    present = n.is_not_null()
    v = n.fill_null(0)
    groups = [(v // 10**10) % 10_000, (v // 10**6) % 10_000, (v // 10**2) % 10_000]
    total = sum(_GROUP_SUMS.gather(g) for g in groups) + 3 * ((v // 10) % 10)
    return present & (((10 - total % 10) % 10) == v % 10)


def gtin_valid(c: pl.Expr) -> pl.Expr:
    """8, 12, 13 or 14 digits with a correct GS1 check digit."""
    s = c.str.strip_chars()
    number = s.cast(pl.Int64, strict=False)
    shaped = s.str.len_bytes().is_in([8, 12, 13, 14]) & (number >= 0) & ~s.str.starts_with("+")
    n = pl.when(shaped).then(number)
    # map_batches: the parsed column is computed once, not once per digit
    return n.map_batches(_gs1_check, return_dtype=pl.Boolean)


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


def item_count(c: pl.Expr) -> pl.Expr:
    """Items of a list column ('a, b | c' has 3): separators + 1, counted without splitting.

    Leading and trailing separators are ignored; an empty item between two separators counts.
    """
    s = c.str.strip_chars(" |;,")
    separators = sum(s.str.count_matches(sep, literal=True) for sep in ("|", ";", ","))
    return pl.when(s == "").then(0).otherwise(separators + 1)


def all_items_urls(c: pl.Expr) -> pl.Expr:
    """Every item of a list column is an http(s) URL, as one regular expression."""
    item = r"https?://[^\s|;,]+"
    return c.str.contains(rf"^[\s|;,]*{item}(\s*[|;,][\s|;,]*{item})*[\s|;,]*$")
