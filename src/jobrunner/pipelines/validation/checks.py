"""A ruleset compiled to checks: one boolean polars expression per rule, True where it fails."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from jobrunner.pipelines.validation.parse import (
    URL,
    as_decimal,
    empty,
    list_items,
    valid_of_type,
)
from jobrunner.pipelines.validation.rules import Column, Cross, Ruleset

_OPS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Check:
    column: str
    code: str
    message: str
    bad: pl.Expr


def required_columns(ruleset: Ruleset, category: str | None) -> list[str]:
    names = [n for n, c in ruleset.columns.items() if c.required]
    if category and category in ruleset.categories:
        names += [n for n in ruleset.categories[category].required if n not in names]
    return names


def compile_checks(ruleset: Ruleset, present: set[str], category: str | None) -> list[Check]:
    checks: list[Check] = []
    for name, column in ruleset.columns.items():
        if name in present:
            checks += _column_checks(name, column)
    if category and category in ruleset.categories:
        for name in ruleset.categories[category].required:
            if name in present and not ruleset.columns.get(name, Column()).required:
                checks.append(
                    Check(
                        name, "required", f"{name} is required for {category}", empty(pl.col(name))
                    )
                )
    checks += [_cross(rule) for rule in ruleset.cross if {rule.left, rule.right} <= present]
    return checks


def _column_checks(name: str, column: Column) -> list[Check]:
    c = pl.col(name)
    filled = ~empty(c)
    out: list[Check] = []
    if column.required:
        out.append(Check(name, "required", f"{name} must not be empty", empty(c)))
    if column.type == "list":
        return out + _list_checks(name, column, filled)
    if column.type != "string":
        out.append(
            Check(
                name,
                f"type_{column.type}",
                f"{name} is not a valid {column.type}",
                filled & ~valid_of_type(c, column.type),
            )
        )
    out += _range_checks(name, column, filled)
    out += _text_checks(name, column, filled)
    return out


def _range_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    value = as_decimal(pl.col(name))
    out: list[Check] = []
    if column.min is not None:
        below = value <= column.min if column.min_exclusive else value < column.min
        word = "greater than" if column.min_exclusive else "at least"
        out.append(Check(name, "min", f"{name} must be {word} {column.min:g}", filled & below))
    if column.max is not None:
        out.append(
            Check(
                name, "max", f"{name} must be at most {column.max:g}", filled & (value > column.max)
            )
        )
    return out


def _text_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    c = pl.col(name)
    length = c.str.strip_chars().str.len_chars()
    out: list[Check] = []
    if column.min_length is not None:
        out.append(
            Check(
                name,
                "min_length",
                f"{name} needs at least {column.min_length} characters",
                filled & (length < column.min_length),
            )
        )
    if column.max_length is not None:
        out.append(
            Check(
                name,
                "max_length",
                f"{name} allows at most {column.max_length} characters",
                filled & (length > column.max_length),
            )
        )
    if column.pattern is not None:
        out.append(
            Check(
                name,
                "pattern",
                f"{name} must match {column.pattern}",
                filled & ~c.str.strip_chars().str.contains(column.pattern),
            )
        )
    if column.one_of is not None:
        allowed = [v.lower() for v in column.one_of]
        out.append(
            Check(
                name,
                "one_of",
                f"{name} must be one of {', '.join(column.one_of)}",
                filled & ~c.str.strip_chars().str.to_lowercase().is_in(allowed),
            )
        )
    return out


def _list_checks(name: str, column: Column, filled: pl.Expr) -> list[Check]:
    items = list_items(pl.col(name))
    out: list[Check] = []
    if column.max_items is not None:
        out.append(
            Check(
                name,
                "too_many_items",
                f"{name} allows at most {column.max_items} items",
                filled & (items.list.len() > column.max_items),
            )
        )
    if column.item_type == "url":
        all_urls = items.list.eval(pl.element().str.contains(URL)).list.all()
        out.append(
            Check(
                name, "type_url", f"every item of {name} must be an http(s) URL", filled & ~all_urls
            )
        )
    return out


def _cross(rule: Cross) -> Check:
    left, right = as_decimal(pl.col(rule.left)), as_decimal(pl.col(rule.right))
    holds = _OPS[rule.op](left, right)
    message = rule.message or f"{rule.left} must be {rule.op} {rule.right}"
    both = left.is_not_null() & right.is_not_null()
    return Check(rule.left, rule.code, message, both & ~holds)
