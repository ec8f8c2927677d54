"""The screen: one cheap pass over every row that clears the rows certain to pass every check.

The full checks (checks.py) trim every value, parse every number format and say which rule
failed; that costs several times a plain read. Catalogs are mostly clean, so the full checks
run only on the rows the screen does not clear. The screen reads values as written: a value
in its plain form ('12,5', '7891234567895', 'new') is judged at once, anything unusual
(spaces around it, '1.234,56', 'NEW') is left to the full checks.

The one rule: a screen may send a clean row on to the full checks, it must never clear a row
the full checks would flag. tests/pipelines/test_screen.py holds it to that on hostile values.
Unique keys are only hashed here: duplicates are found across the whole file (findings.py).
"""

from __future__ import annotations

import re
from collections.abc import Collection

import polars as pl

from jobrunner.pipelines.formulas import is_formula_like, plain_start
from jobrunner.pipelines.validation.checks import (
    RAGGED_FLAG,
    column_flag,
    cross_flag,
    required_columns,
)
from jobrunner.pipelines.validation.parse import (
    EMAIL,
    TRUTHY,
    URL,
    as_date,
    gs1_check_ok,
    gtin_number,
    plain_decimal,
)
from jobrunner.pipelines.validation.reading import EXTRA
from jobrunner.pipelines.validation.rules import COMPARISONS, Column, Cross, Ruleset

OK = "__ok"
STAGED = "^__s[a-z]_.*$"  # the screen's working columns (trimmed, parsed, hashed values)
_SEPARATORS = ("|", ";", ",")
_ITEM_URL = r"https?://[^\s|;,]+"


def trimmed(name: str) -> str:
    """The column holding ``name``'s value without surrounding spaces."""
    return f"__st_{name}"


def key_hash(name: str) -> str:
    """The column holding a 64-bit hash of a ``unique`` column's trimmed value (null if empty)."""
    return f"__sh_{name}"


def _value(name: str) -> str:
    return f"__sv_{name}"


def screened(
    frame: pl.LazyFrame,
    ruleset: Ruleset,
    present: set[str],
    category: str | None,
    keys: Collection[str] = (),
) -> pl.LazyFrame:
    """``frame`` plus ``__ok`` (True: no check can fail on this row), one flag per column and
    cross rule (``column_flag``, ``cross_flag``: which checks a row still needs), for every
    column the screen needs trimmed ``__st_<column>``, and for the ``keys`` columns (those a
    KeyLedger collects) their trimmed text and ``key_hash``."""
    required = set(required_columns(ruleset, category))
    staged: list[pl.Expr] = []
    flags: list[pl.Expr] = []
    for name in sorted(present):
        column = ruleset.columns.get(name)
        if column is None:
            if name in required:  # a category requires a column the ruleset does not type
                staged.append(pl.col(name).str.strip_chars().alias(trimmed(name)))
                flags.append((pl.col(trimmed(name)).str.len_bytes() > 0).alias(column_flag(name)))
            continue
        formulas = bool(ruleset.file.formulas)
        stage, ok = _column(name, column, name in required, keyed=name in keys, formulas=formulas)
        staged += stage
        flags.append(ok.alias(column_flag(name)))
    for index, rule in enumerate(ruleset.cross):
        if {rule.left, rule.right} <= present:
            staged += [_number(n, ruleset.columns.get(n)) for n in (rule.left, rule.right)]
            flags.append(_cross(rule, ruleset).alias(cross_flag(index)))
    if EXTRA in present:  # the row has more fields than the header
        flags.append(pl.col(EXTRA).is_null().alias(RAGGED_FLAG))
    names = [f.meta.output_name() for f in flags]
    everything = pl.all_horizontal(names) if names else pl.lit(True)
    return (
        frame.with_columns(_unique_columns(staged))
        .with_columns(*(f.fill_null(False) for f in flags), *_key_hashes(present & set(keys)))
        .with_columns(everything.alias(OK))
    )


def _key_hashes(keys: set[str]) -> list[pl.Expr]:
    """Hashes of the keys, computed here in parallel with the read (see KeyLedger)."""
    out = []
    for name in sorted(keys):
        text = pl.col(trimmed(name))
        hashed = pl.when(text.str.len_bytes() > 0).then(text.hash(seed=1))
        out.append(hashed.alias(key_hash(name)))
    return out


def _unique_columns(exprs: list[pl.Expr]) -> list[pl.Expr]:
    """Stage expressions by output name, once each (a cross rule may ask for a value again)."""
    seen: dict[str, pl.Expr] = {}
    for expr in exprs:
        seen.setdefault(expr.meta.output_name(), expr)
    return list(seen.values())


def _number_name(name: str, column: Column | None) -> str:
    numeric = column is not None and column.type in ("int", "decimal")
    return _value(name) if numeric else f"__sx_{name}"


def _number(name: str, column: Column | None) -> pl.Expr:
    """The value as the full checks' number: int columns as integers, others as decimals."""
    raw = pl.col(name)
    is_int = column is not None and column.type == "int"
    parsed = raw.cast(pl.Int64, strict=False) if is_int else plain_decimal(raw)
    return parsed.alias(_number_name(name, column))


def _column(
    name: str, column: Column, required: bool, *, keyed: bool, formulas: bool = False
) -> tuple[list[pl.Expr], pl.Expr]:
    """Stage-one expressions (parsed or trimmed values) and the column's ok expression."""
    raw = pl.col(name)
    staged: list[pl.Expr] = []
    conditions: list[pl.Expr] = []
    # a pattern that cannot match spaces at either end is matched against the value as
    # written: where it matches, trimming would change nothing
    on_raw = column.pattern is not None and edges_never_space(column.pattern)
    # a typed value that passes is never empty, nor is one matching such a pattern or one of
    # the allowed values; other text and plain lists need trimming to tell
    implied = _url_list(column) or on_raw or bool(column.one_of and _plain(column.one_of))
    check_filled = required and column.type in ("string", "list") and not implied
    texts = column.min_length is not None or (column.pattern is not None and not on_raw) or keyed
    if check_filled or texts:
        staged.append(raw.str.strip_chars().alias(trimmed(name)))
    text = pl.col(trimmed(name))
    typed = _typed(name, column, staged)
    if typed is not None:
        conditions.append(typed)
    if check_filled:
        conditions.append(text.str.len_bytes() > 0)
    if column.max_length is not None:  # bytes >= characters, and trimming only shortens
        conditions.append(raw.str.len_bytes() <= column.max_length)
    if column.min_length is not None:
        conditions.append(text.str.len_chars() >= column.min_length)
    if column.pattern is not None:
        conditions.append((raw if on_raw else text).str.contains(column.pattern))
    if column.one_of is not None:
        conditions.append(_one_of(raw, column.one_of))
    if formulas and not _never_formula(column, on_raw):
        conditions.append(_no_formula_start(raw))
    ok = pl.all_horizontal(conditions) if conditions else pl.lit(True)
    # a missing value breaks only ``required``; an empty quoted one goes to the full checks
    return staged, pl.when(raw.is_null()).then(pl.lit(not required)).otherwise(ok)


_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_]")
_SAFE_CLASS = re.compile(r"\[[A-Za-z0-9_\-]+\]")  # e.g. [A-Z], [0-9a-f_-]: no space, no escape
_AT_LEAST_ONCE = re.compile(r"(?:\+|\{[1-9][0-9]*(?:,[0-9]*)?\})\??$")


def edges_never_space(pattern: str) -> bool:
    """True when ``pattern`` is anchored at both ends and both its first and last character
    can only be letters, digits or the like, so no value it matches starts or ends with a
    space. A deliberately narrow reading: anything it does not recognise answers False."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or "|" in pattern:
        return False
    body = pattern[1:-1]
    if body.endswith("\\"):  # the '$' was escaped: not an anchor
        return False
    first = _SAFE_CLASS.match(body) or _SAFE_LITERAL.match(body)
    if first is None or body[first.end() :].startswith(("?", "*", "{0")):
        return False  # not a safe first atom, or one that may be skipped
    repeat = _AT_LEAST_ONCE.search(body)
    core = body[: repeat.start()] if repeat else body
    last = re.search(r"(?:\[[A-Za-z0-9_\-]+\]|(?<!\\)[A-Za-z0-9_])$", core)
    if repeat is None and core[-1:] in ("*", "?", "}", ")"):
        return False
    return last is not None


_TYPES_NEVER_FORMULA = ("int", "decimal", "gtin", "bool", "date", "url")


def _never_formula(column: Column, on_raw: bool) -> bool:
    """True when a value passing the column's other screen conditions cannot be formula-like:
    a parsed number is a plain one, a date or GTIN starts with a digit, a URL with 'http', an
    allowed value is known, and a pattern matched as written may start with a letter only."""
    if column.type in _TYPES_NEVER_FORMULA or _url_list(column):
        return True
    if column.one_of is not None and _plain(column.one_of):
        return not any(is_formula_like(v) for v in _plain(column.one_of))
    pattern = column.pattern or ""
    return on_raw and len(pattern) > 1 and pattern[1].isascii() and pattern[1].isalnum()


def _no_formula_start(raw: pl.Expr) -> pl.Expr:
    """Cheap enough for every value (formulas.plain_start: three comparisons); anything it
    does not clear goes to the full checks."""
    return plain_start(raw)


def _plain(allowed: list[str]) -> list[str]:
    """The allowed values a raw value can equal as written: others only match once trimmed."""
    return [v for v in allowed if v and v == v.strip()]


def _one_of(raw: pl.Expr, allowed: list[str]) -> pl.Expr:
    plain = _plain(allowed)
    if not plain:
        return pl.lit(False)
    if len(plain) > 8:
        return raw.is_in(plain)
    # a few comparisons beat hashing every value
    return pl.any_horizontal(raw == v for v in plain)


def _url_list(column: Column) -> bool:
    return column.type == "list" and column.item_type == "url"


def _typed(name: str, column: Column, staged: list[pl.Expr]) -> pl.Expr | None:
    """The type's (and range's) condition on the value as written; None when there is none.

    Every condition but a plain list's item count is false on empty text."""
    raw = pl.col(name)
    kind = column.type
    if kind in ("int", "decimal"):
        staged.append(_number(name, column))
        return _in_range(pl.col(_value(name)), column)
    if kind == "gtin":
        staged.append(gtin_number(raw).alias(_value(name)))
        return gs1_check_ok(pl.col(_value(name)))
    if kind == "bool":
        return raw.is_in(TRUTHY)
    if kind == "date":
        return as_date(raw).is_not_null()
    if kind in ("url", "email"):  # neither pattern allows a space, so trimming changes nothing
        return raw.str.contains(URL if kind == "url" else EMAIL)
    if kind == "list":
        return _list(raw, column)
    return None


def _in_range(value: pl.Expr, column: Column) -> pl.Expr:
    ok = value.is_not_null()
    if column.min is not None:
        ok &= value > column.min if column.min_exclusive else value >= column.min
    if column.max is not None:
        ok &= value <= column.max
    return ok


def _list(raw: pl.Expr, column: Column) -> pl.Expr | None:
    if _url_list(column):  # items joined by one separator each, no spaces: one regex says all
        repeat = "*" if column.max_items is None else f"{{0,{column.max_items - 1}}}"
        return raw.str.contains(rf"^{_ITEM_URL}(?:[|;,]{_ITEM_URL}){repeat}$")
    if column.max_items is None:
        return None
    # every separator in the raw text counts, so this never undercounts the items
    counts = [raw.str.count_matches(s, literal=True) for s in _SEPARATORS]
    return pl.sum_horizontal(counts) + 1 <= column.max_items


def _cross(rule: Cross, ruleset: Ruleset) -> pl.Expr:
    left, right = (pl.col(_number_name(n, ruleset.columns.get(n))) for n in (rule.left, rule.right))
    holds: pl.Expr = COMPARISONS[rule.op](left, right)
    # a missing value makes the rule moot; any other unparsed one goes to the full checks
    return pl.col(rule.left).is_null() | pl.col(rule.right).is_null() | holds
