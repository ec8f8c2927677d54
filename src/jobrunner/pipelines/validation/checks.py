"""A ruleset compiled to checks: one boolean polars expression per rule, True where it fails.

Checks read *features*: per-column values derived once per batch (trimmed text, emptiness,
number, length, GTIN validity), so a price parsed for its type check is not parsed again for
its minimum or for a cross-field rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from jobrunner.pipelines.formulas import formula_like
from jobrunner.pipelines.validation.parse import (
    all_items_urls,
    as_decimal,
    as_int,
    gs1_check_ok,
    gtin_number,
    item_count,
    valid_of_type,
)
from jobrunner.pipelines.validation.reading import EXTRA
from jobrunner.pipelines.validation.rules import COMPARISONS, Column, Cross, Ruleset

RAGGED_FLAG = "__okr"  # the screen's flag: the row has no more fields than the header


def column_flag(name: str) -> str:
    """The screen's flag: ``name``'s value passes all of its column's checks."""
    return f"__ok_{name}"


def cross_flag(index: int) -> str:
    """The screen's flag: the ruleset's cross rule number ``index`` holds."""
    return f"__okx_{index}"


@dataclass(frozen=True)
class Check:
    column: str
    code: str
    message: str
    bad: pl.Expr
    flag: str = ""  # the screen's flag: where it is True, this check cannot fail
    reads: tuple[str, ...] = ()  # the columns whose features ``bad`` reads
    shows: str = ""  # the column whose text the finding reports (default: ``column``)


def _trim(name: str) -> pl.Expr:
    return pl.col(f"__t_{name}")


def _empty(name: str) -> pl.Expr:
    return pl.col(f"__e_{name}")


def _blank(c: pl.Expr) -> pl.Expr:
    return c.is_null() | (c.str.strip_chars() == "")


def _number(name: str) -> pl.Expr:
    return pl.col(f"__n_{name}")


def _valid(name: str) -> pl.Expr:
    return pl.col(f"__v_{name}")


def trimmed_features(ruleset: Ruleset, columns: set[str]) -> list[pl.Expr]:
    """Stage one: each checked column trimmed once."""
    return [pl.col(n).str.strip_chars().alias(f"__t_{n}") for n in ruleset.columns if n in columns]


def derived_features(ruleset: Ruleset, columns: set[str]) -> list[pl.Expr]:
    """Stage two, from the trimmed text: emptiness, numbers and type validity."""
    out: list[pl.Expr] = []
    for name, column in ruleset.columns.items():
        if name not in columns:
            continue
        t = _trim(name)
        out.append((t.is_null() | (t == "")).alias(f"__e_{name}"))
        if column.type == "int":
            out.append(as_int(t).alias(f"__n_{name}"))
        elif column.type == "decimal":
            out.append(as_decimal(t, trimmed=True).alias(f"__n_{name}"))
        elif column.type == "gtin":
            out.append(gtin_number(t).alias(f"__g_{name}"))
        elif column.type not in ("string", "list"):
            out.append(valid_of_type(t, column.type).alias(f"__v_{name}"))
    return out


def required_columns(ruleset: Ruleset, category: str | None) -> list[str]:
    names = [n for n, c in ruleset.columns.items() if c.required]
    if category and category in ruleset.categories:
        names += [n for n in ruleset.categories[category].required if n not in names]
    return names


def columns_read(ruleset: Ruleset, present: list[str], category: str | None) -> list[str]:
    """The ``present`` columns a ruleset says anything about, in file order."""
    named = set(ruleset.columns) | set(required_columns(ruleset, category))
    named |= {n for rule in ruleset.cross for n in (rule.left, rule.right)}
    return [name for name in present if name in named]


def compile_checks(ruleset: Ruleset, present: set[str], category: str | None) -> list[Check]:
    """Every check that applies to a file with the ``present`` columns, in report order
    (``__extra`` among them when the file was scanned for rows with too many fields)."""
    checks: list[Check] = []
    for name, column in ruleset.columns.items():
        if name in present:
            of_column = _column_checks(name, column) + _formula_check(name, ruleset)
            checks += [replace(c, flag=column_flag(name), reads=(name,)) for c in of_column]
    if category and category in ruleset.categories:
        for name in ruleset.categories[category].required:
            if name in present and not ruleset.columns.get(name, Column()).required:
                message = f"{name} is required for {category}"
                missing = _empty(name) if name in ruleset.columns else _blank(pl.col(name))
                checks.append(Check(name, "required", message, missing, column_flag(name), (name,)))
    for index, rule in enumerate(ruleset.cross):
        if {rule.left, rule.right} <= present:
            check = _cross(rule, ruleset)
            checks.append(replace(check, flag=cross_flag(index), reads=(rule.left, rule.right)))
    if EXTRA in present:  # often a delimiter left unquoted inside a value
        width = len(present - {EXTRA})
        message = f"the row has more fields than the header's {width}; the extra ones are ignored"
        extra = pl.col(EXTRA).is_not_null()
        checks.append(Check("*", "ragged_row", message, extra, RAGGED_FLAG, (), shows=EXTRA))
    return checks


def _column_checks(name: str, column: Column) -> list[Check]:
    filled = ~_empty(name)
    out: list[Check] = []
    if column.required:
        out.append(Check(name, "required", f"{name} must not be empty", _empty(name)))
    if column.type == "list":
        return out + _list_checks(name, column, filled)
    if column.type in ("int", "decimal"):
        bad_type = _number(name).is_null()
    elif column.type == "gtin":
        bad_type = ~gs1_check_ok(pl.col(f"__g_{name}")).fill_null(False)
    elif column.type == "string":
        bad_type = None
    else:
        bad_type = ~_valid(name)
    if bad_type is not None:
        message = f"{name} is not a valid {column.type}"
        out.append(Check(name, f"type_{column.type}", message, filled & bad_type))
    return out + _range_checks(name, column, filled) + _text_checks(name, column, filled)


def _formula_check(name: str, ruleset: Ruleset) -> list[Check]:
    if not ruleset.file.formulas:
        return []
    message = f"{name} starts like a spreadsheet formula (=, +, -, @, tab or CR)"
    # on the value as written: only spaces and line feeds before a trigger count (a
    # spreadsheet does not skip a no-break space, and tab and CR are triggers themselves)
    return [Check(name, "formula", message, ~_empty(name) & formula_like(pl.col(name)))]


def _range_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    if column.type not in ("int", "decimal"):
        return []
    value = _number(name)
    out: list[Check] = []
    if column.min is not None:
        below = value <= column.min if column.min_exclusive else value < column.min
        word = "greater than" if column.min_exclusive else "at least"
        out.append(Check(name, "min", f"{name} must be {word} {column.min:g}", filled & below))
    if column.max is not None:
        message = f"{name} must be at most {column.max:g}"
        out.append(Check(name, "max", message, filled & (value > column.max)))
    return out


def _text_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    t = _trim(name)
    out: list[Check] = []
    if column.min_length is not None:
        short = t.str.len_chars() < column.min_length
        message = f"{name} needs at least {column.min_length} characters"
        out.append(Check(name, "min_length", message, filled & short))
    if column.max_length is not None:
        # bytes >= chars: only values long in bytes need counting characters
        long = (t.str.len_bytes() > column.max_length) & (t.str.len_chars() > column.max_length)
        message = f"{name} allows at most {column.max_length} characters"
        out.append(Check(name, "max_length", message, filled & long))
    if column.pattern is not None:
        message = f"{name} must match {column.pattern}"
        out.append(Check(name, "pattern", message, filled & ~t.str.contains(column.pattern)))
    if column.one_of is not None:
        allowed = [v.lower() for v in column.one_of]
        message = f"{name} must be one of {', '.join(column.one_of)}"
        known = t.is_in(column.one_of) | t.str.to_lowercase().is_in(allowed)
        out.append(Check(name, "one_of", message, filled & ~known))
    return out


def _list_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    t = _trim(name)
    out: list[Check] = []
    if column.max_items is not None:
        message = f"{name} allows at most {column.max_items} items"
        out.append(
            Check(name, "too_many_items", message, filled & (item_count(t) > column.max_items))
        )
    if column.item_type == "url":
        message = f"every item of {name} must be an http(s) URL"
        out.append(Check(name, "type_url", message, filled & ~all_items_urls(t)))
    return out


def _numeric(name: str, ruleset: Ruleset) -> pl.Expr:
    column = ruleset.columns.get(name)
    if column is not None and column.type in ("int", "decimal"):
        return _number(name)
    return as_decimal(pl.col(name))


def _cross(rule: Cross, ruleset: Ruleset) -> Check:
    left, right = _numeric(rule.left, ruleset), _numeric(rule.right, ruleset)
    holds: pl.Expr = COMPARISONS[rule.op](left, right)
    message = rule.message or f"{rule.left} must be {rule.op} {rule.right}"
    both = left.is_not_null() & right.is_not_null()
    return Check(rule.left, rule.code, message, both & ~holds)


def mask_name(index: int) -> str:
    return f"__m{index}"


def with_masks(frame: pl.LazyFrame, ruleset: Ruleset, checks: dict[int, Check]) -> pl.LazyFrame:
    """The features ``checks`` read and one boolean column per check (``mask_name`` of its
    number): which rule each row breaks."""
    reads = {c for check in checks.values() for c in check.reads}
    masks = [c.bad.fill_null(False).alias(mask_name(i)) for i, c in checks.items()]
    return (
        frame.with_columns(trimmed_features(ruleset, reads))
        .with_columns(derived_features(ruleset, reads))
        .with_columns(masks)
    )
