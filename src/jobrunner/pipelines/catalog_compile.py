"""Rules compiled to polars expressions: one boolean mask per check, evaluated per batch.

Every check is vectorised. Columns arrive as strings; a batch first gains per-column
features (trimmed text ``__t:<col>``, parsed number ``__n:<col>``) so that each check reads
them instead of re-parsing, then one ``select`` evaluates every mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from jobrunner.pipelines.catalog_rules import ColumnRule, CrossRule, Ruleset

__all__ = ["DUP", "EXTRA", "Check", "Compiled", "compile_rules", "gtin_valid", "text", "trimmed"]

EXTRA = "__extra"  # holds a field beyond the header's count: the record is ragged
DUP = "__dup:"  # prefix of the per-batch duplicate flags the runner adds for unique columns
_URL = r"https?://[^\s,|;]+\.[^\s,|;]+"
_EMAIL = r"[^@\s,|;]+@[^@\s,|;]+\.[^@\s,|;]+"
_ITEM = {"string": r"[^,|;]*", "int": r"[+-]?\d+", "url": _URL, "email": _EMAIL}
_GROUP_SUMS = pl.lit(
    pl.Series(
        [3 * (v % 10) + (v // 10 % 10) + 3 * (v // 100 % 10) + v // 1000 for v in range(10_000)]
    )
)
_BOOLS = ["true", "false", "1", "0", "yes", "no", "y", "n", "sim", "não", "nao"]
_CMP = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Check:
    code: str
    column: str  # the canonical column, or "*" for the whole record
    message: str
    mask: pl.Expr  # True where the row fails; never True for an empty value except `required`


@dataclass(frozen=True)
class Compiled:
    features: list[pl.Expr]
    checks: list[Check]
    missing: list[str]  # required columns absent from the header
    unique: list[str]  # present columns the runner tracks for duplicates


def text(column: str) -> pl.Expr:
    # Values are checked as written (no trimmed copy: it cost a third of the run time);
    # padding shows up as a finding (" 10" is not an int) and auto_fix trims it.
    return pl.col(column)


def trimmed(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars()


def compile_rules(ruleset: Ruleset, present: list[str], *, decimal_comma: bool) -> Compiled:
    """Checks for the columns present in the file; absent required ones are listed."""
    features: list[pl.Expr] = []
    checks: list[Check] = [
        Check("ragged_row", "*", "record has more fields than the header", _ragged())
    ]
    for name, rule in ruleset.columns.items():
        if name not in present:
            continue
        # whitespace-only counts as empty; computed once, read by every check of the column
        features.append(text(name).str.contains(r"\S").fill_null(False).alias(f"__f:{name}"))
        number = _number(name, rule, decimal_comma)
        if number is not None:
            features.append(number.alias(f"__n:{name}"))
        checks.extend(_column_checks(name, rule))
    checks.extend(_cross(r) for r in ruleset.cross if r.left in present and r.right in present)
    missing = [n for n, r in ruleset.columns.items() if r.required and n not in present]
    unique = [n for n, r in ruleset.columns.items() if r.unique and n in present]
    return Compiled(features, checks, missing, unique)


def gtin_valid(digits: pl.Expr) -> pl.Expr:
    """GTIN-8/12/13/14 check digit on a digits-only string, by integer arithmetic.

    Weights 3,1,3,... run from the right of the body, so leading zeros never matter and one
    formula covers every length; a 14-digit string always fits an Int64.
    """
    n = digits.cast(pl.Int64, strict=False)
    body = n // 10
    total = pl.lit(0, dtype=pl.Int64)
    # Four body digits per table lookup (weights 3,1,3,1 from the right in every group, as
    # 4 is even): 4 gathers instead of 13 divide/modulo/multiply rounds.
    for g in range(4):
        total = total + _GROUP_SUMS.gather((body // 10 ** (4 * g)) % 10_000)
    return ((10 - total % 10) % 10) == n % 10


def _ragged() -> pl.Expr:
    return pl.col(EXTRA).is_not_null() & (pl.col(EXTRA).str.strip_chars() != "")


def _number(name: str, rule: ColumnRule, decimal_comma: bool) -> pl.Expr | None:
    t = text(name)
    if rule.type == "int" and not rule.multiple:
        return t.cast(pl.Int64, strict=False).cast(pl.Float64)
    if rule.type == "decimal":
        if decimal_comma:
            # In a decimal-comma file a '.' is a thousands separator or a mistake: not plain.
            plain = t.str.replace(",", ".", literal=True)
            return pl.when(t.str.contains(".", literal=True)).then(None).otherwise(_float(plain))
        return _float(t)
    return None


def _float(value: pl.Expr) -> pl.Expr:
    number = value.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def _column_checks(name: str, rule: ColumnRule) -> list[Check]:
    t = text(name)
    filled = pl.col(f"__f:{name}")
    checks: list[Check] = []
    if rule.required:
        checks.append(Check("required", name, "a value is required", ~filled))
    type_check = _type_check(name, rule, t)
    if type_check is not None:
        code, message, bad = type_check
        checks.append(Check(code, name, message, filled & bad))
    if rule.type == "gtin" and not rule.multiple:
        digits_ok = t.str.contains(r"^(\d{8}|\d{12,14})$")
        bad = digits_ok & ~gtin_valid(t)
        checks.append(Check("gtin_check_digit", name, "GTIN check digit is wrong", bad))
    checks.extend(_bounds(name, rule))
    checks.extend(_text_checks(name, rule, t, filled))
    if rule.unique:
        checks.append(Check("duplicate", name, "value repeats an earlier row", pl.col(DUP + name)))
    return checks


def _type_check(name: str, rule: ColumnRule, t: pl.Expr) -> tuple[str, str, pl.Expr] | None:
    if rule.multiple:
        item = _ITEM[rule.type]
        pattern = rf"^\s*{item}(\s*[,|;]\s*{item})*\s*$"
        return f"type_{rule.type}", f"every item must be a {rule.type}", ~t.str.contains(pattern)
    n = pl.col(f"__n:{name}")
    table: dict[str, tuple[str, pl.Expr]] = {
        "int": ("must be a whole number", n.is_null()),
        "decimal": ("must be a plain number", n.is_null()),
        "bool": ("must be true or false", ~t.str.to_lowercase().is_in(_BOOLS)),
        "date": (
            f"must be a date like {rule.date_format}",
            t.str.to_date(rule.date_format, strict=False).is_null(),
        ),
        "url": ("must be an http(s) URL", ~t.str.contains(f"^{_URL}$")),
        "email": ("must be an e-mail address", ~t.str.contains(f"^{_EMAIL}$")),
        "gtin": ("GTIN must have 8, 12, 13 or 14 digits", ~t.str.contains(r"^(\d{8}|\d{12,14})$")),
    }
    if rule.type not in table:
        return None
    message, bad = table[rule.type]
    return f"type_{rule.type}", message, bad


def _bounds(name: str, rule: ColumnRule) -> list[Check]:
    n = pl.col(f"__n:{name}")
    checks: list[Check] = []
    if rule.min is not None:
        low = n <= rule.min if rule.exclusive_min else n < rule.min
        word = "greater than" if rule.exclusive_min else "at least"
        checks.append(Check("min", name, f"must be {word} {rule.min:g}", low.fill_null(False)))
    if rule.max is not None:
        high = (n > rule.max).fill_null(False)
        checks.append(Check("max", name, f"must be at most {rule.max:g}", high))
    return checks


def _text_checks(name: str, rule: ColumnRule, t: pl.Expr, filled: pl.Expr) -> list[Check]:
    checks: list[Check] = []
    length = t.str.len_chars()
    if rule.min_length is not None:
        short = filled & (length < rule.min_length)
        message = f"must have at least {rule.min_length} characters"
        checks.append(Check("min_length", name, message, short))
    if rule.max_length is not None:
        message = f"must have at most {rule.max_length} characters"
        checks.append(Check("max_length", name, message, filled & (length > rule.max_length)))
    if rule.regex is not None:
        bad = filled & ~t.str.contains(rule.regex)
        checks.append(Check("regex", name, f"must match {rule.regex}", bad))
    if rule.one_of is not None:
        message = f"must be one of {', '.join(rule.one_of)}"
        checks.append(Check("one_of", name, message, filled & ~t.is_in(rule.one_of)))
    if rule.max_items is not None:
        items = t.str.count_matches(r"[,|;]") + 1
        message = f"at most {rule.max_items} items"
        checks.append(Check("too_many_items", name, message, filled & (items > rule.max_items)))
    return checks


def _cross(rule: CrossRule) -> Check:
    left, right = pl.col(f"__n:{rule.left}"), pl.col(f"__n:{rule.right}")
    ok = _CMP[rule.op](left, right)
    message = rule.message or f"{rule.left} must be {rule.op} {rule.right}"
    # Compared only where both parse: an unparsable side already has its own type finding.
    return Check("cross_field", rule.left, message, ok.not_().fill_null(False))
