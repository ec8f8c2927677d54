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


def finite(x: pl.Expr) -> pl.Expr:
    """NaN and infinities parse as floats but are no price or quantity."""
    return pl.when(x.is_finite()).then(x)


def as_decimal(c: pl.Expr, *, trimmed: bool = False) -> pl.Expr:
    return finite(decimal_text(c, trimmed=trimmed).cast(pl.Float64, strict=False))


def plain_decimal(c: pl.Expr) -> pl.Expr:
    """``as_decimal`` for text with at most one separator and no spaces ('12,5', '12.5',
    '12'), the usual case; null for anything else, which as_decimal then decides. Where this
    is not null it equals as_decimal: one comma and no dot is a decimal comma there too."""
    return finite(c.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False))


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


def gtin_number(c: pl.Expr) -> pl.Expr:
    """The value as a number where it is 8, 12, 13 or 14 plain digits, else null."""
    # the integer cast takes only an optional sign and digits: without a sign, digits only
    signed = c.str.starts_with("+") | c.str.starts_with("-")
    shaped = c.str.len_bytes().is_in([8, 12, 13, 14]) & ~signed
    return pl.when(shaped).then(c.cast(pl.Int64, strict=False))


def gs1_check_ok(n: pl.Expr) -> pl.Expr:
    """The GS1 check digit of a ``gtin_number`` is right (null stays null).

    Left zeros weigh nothing, so the number itself is the 14-digit GTIN. Its first 12 digits
    are three 4-digit groups summed through a table (weights 3,1,3,1 each); digit 13 weighs 3
    and digit 14 is the check digit. Pass a column, not an expression: ``n`` is read 5 times.
    """
    table = pl.lit(_GROUP_SUMS)
    groups = [(n // 10**10) % 10_000, (n // 10**6) % 10_000, (n // 10**2) % 10_000]
    total = sum((table.gather(g) for g in groups), 3 * ((n // 10) % 10))
    return ((10 - total % 10) % 10) == n % 10


def gtin_valid(c: pl.Expr) -> pl.Expr:
    """8, 12, 13 or 14 digits (spaces around allowed) with a correct GS1 check digit.

    For one-off use; hot paths stage ``gtin_number`` as a column first (see gs1_check_ok)."""
    return gs1_check_ok(gtin_number(c.str.strip_chars())).fill_null(False)


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
