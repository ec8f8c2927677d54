"""Catalog rulesets as data: TOML files validated by pydantic, found by name or marketplace.

Shipped rulesets live in ``pipelines/catalog_rulesets/<name>.toml``; a user dir may add
files or override shipped ones by name. Schema (every key optional unless marked)::

    marketplace = "mercado_livre"      # load_ruleset(marketplace=...) finds the file by this
    description = "..."
    extends = "default"                # deep-merged under this file: columns and categories
                                       # by key, [[cross]] appended, other keys replaced
    dedupe_key = ["sku"]               # the key auto_fix deduplicates on (default: the
                                       # columns marked unique)

    [file]
    max_rows = 1000000                 # more records -> one `too_many_rows` finding

    [columns.<canonical name>]         # a header matches the name or an alias ignoring
    aliases = ["Category Name"]        # case, spaces, '_' and '-'
    type = "string"                    # string|int|decimal|bool|date|url|email|gtin
    required = true                    # column must exist and values must not be empty
    unique = true                      # later repeats are `duplicate` (across all batches)
    min = 0   max = 100                # numbers; exclusive_min = true makes min a '>'
    min_length = 1   max_length = 60   # characters, after trimming
    regex = "^MLB[0-9]+$"              # the whole trimmed value must match
    one_of = ["new", "used"]           # exact; auto_fix lower-cases values that then match
    date_format = "%Y-%m-%d"           # for type = "date"
    multiple = true   max_items = 10   # several values split on ',' '|' or ';', each typed

    [[cross]]                          # numeric comparison on every row where both parse
    left = "sale_price"   op = "<="   right = "price"   message = "..."

    [categories.<name>]                # chosen with validate_csv_file(category=...)
    required = ["brand", "model"]      # extra required columns
    [categories.<name>.columns.<col>]  # column rules merged over the ruleset's
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobrunner.errors import PermanentError

__all__ = [
    "CategoryRule",
    "ColumnRule",
    "CrossRule",
    "FileRule",
    "Ruleset",
    "available_rulesets",
    "load_ruleset",
]

SHIPPED_DIR = Path(__file__).parent / "catalog_rulesets"
ColumnType = Literal["string", "int", "decimal", "bool", "date", "url", "email", "gtin"]
_MULTIPLE_TYPES = ("string", "int", "url", "email")
CrossOp = Literal["<", "<=", ">", ">=", "==", "!="]


class ColumnRule(BaseModel):
    """What one column must look like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: list[str] = Field(default_factory=list)
    type: ColumnType = "string"
    required: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    regex: str | None = None
    one_of: list[str] | None = None
    date_format: str = "%Y-%m-%d"
    multiple: bool = False
    max_items: int | None = Field(default=None, ge=1)

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            # Checked by polars' own (Rust) engine: its syntax is what runs, not Python's re.
            try:
                pl.Series([""]).str.contains(value)
            except pl.exceptions.PolarsError as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ColumnRule:
        if self.max_items is not None and not self.multiple:
            raise ValueError("max_items needs multiple = true")
        if self.multiple and self.type not in _MULTIPLE_TYPES:
            raise ValueError(f"multiple = true supports types {', '.join(_MULTIPLE_TYPES)}")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "decimal"):
            raise ValueError("min/max need type int or decimal")
        return self


class CrossRule(BaseModel):
    """A comparison between two numeric columns of the same row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: str
    op: CrossOp
    right: str
    message: str | None = None


class FileRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rows: int | None = Field(default=None, ge=1)


class CategoryRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    required: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)


class Ruleset(BaseModel):
    """A validated, merged ruleset (``extends`` already resolved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    marketplace: str | None = None
    description: str = ""
    extends: str | None = None
    dedupe_key: list[str] | None = None
    file: FileRule = Field(default_factory=FileRule)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    cross: list[CrossRule] = Field(default_factory=list)
    categories: dict[str, CategoryRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_columns_numeric(self) -> Ruleset:
        for rule in self.cross:
            for name in (rule.left, rule.right):
                column = self.columns.get(name)
                if column is None or column.type not in ("int", "decimal"):
                    raise ValueError(f"cross rule column {name!r} must be an int/decimal column")
        return self

    def for_category(self, category: str | None) -> Ruleset:
        """This ruleset with the category's extra rules merged in."""
        if category is None:
            return self
        rule = self.categories.get(category)
        if rule is None:
            known = ", ".join(sorted(self.categories)) or "(none)"
            raise PermanentError(
                f"unknown category {category!r} for ruleset {self.name!r}; known: {known}",
                code="unknown_category",
                available=sorted(self.categories),
            )
        columns = {**self.columns, **rule.columns}
        for name in rule.required:
            base = columns.get(name, ColumnRule())
            columns[name] = base.model_copy(update={"required": True})
        return self.model_copy(update={"columns": columns})


def available_rulesets(user_dir: Path | None = None) -> list[str]:
    """Names of every ruleset, shipped and in ``user_dir``."""
    return sorted(_sources(user_dir))


def load_ruleset(
    name: str, marketplace: str | None = None, user_dir: Path | None = None
) -> Ruleset:
    """The ruleset ``name``; with ``name="default"`` and a marketplace, that marketplace's.

    Raises PermanentError ``unknown_ruleset`` (listing the available ones) or
    ``ruleset_invalid`` (naming the file and the line or field path).
    """
    sources = _sources(user_dir)
    wanted = marketplace if marketplace and name == "default" else name
    if wanted not in sources:
        wanted = _by_marketplace(wanted, sources) or wanted
    if wanted not in sources:
        listing = ", ".join(sorted(sources))
        raise PermanentError(
            f"unknown ruleset or marketplace {wanted!r}; available: {listing}",
            code="unknown_ruleset",
            available=sorted(sources),
        )
    merged = _resolve(wanted, sources, seen=())
    try:
        return Ruleset.model_validate({**merged, "name": wanted})
    except ValidationError as exc:
        raise _invalid(sources[wanted], exc) from exc


def _sources(user_dir: Path | None) -> dict[str, Path]:
    found = {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.toml"))}
    if user_dir is not None and user_dir.is_dir():
        # User files win over shipped ones of the same name: that is how a team adapts one.
        found.update({p.stem: p for p in sorted(user_dir.glob("*.toml"))})
    return found


def _by_marketplace(marketplace: str, sources: dict[str, Path]) -> str | None:
    for name, path in sorted(sources.items()):
        if _read(path).get("marketplace") == marketplace:
            return name
    return None


def _read(path: Path) -> dict[str, Any]:
    """The file's TOML, checked against the schema on its own so errors name this file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)": keep it, it is the useful part.
        raise PermanentError(
            f"ruleset file {path}: TOML syntax error: {exc}", code="ruleset_invalid", file=str(path)
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(
            f"ruleset file {path}: cannot read: {exc}", code="ruleset_invalid", file=str(path)
        ) from exc
    try:
        Ruleset.model_validate({"name": path.stem, **_without_cross_check(data)})
    except ValidationError as exc:
        raise _invalid(path, exc) from exc
    return data


def _without_cross_check(data: dict[str, Any]) -> dict[str, Any]:
    # A child may compare columns its parent defines, so cross rules are checked after merging.
    return {k: v for k, v in data.items() if k != "cross"}


def _resolve(name: str, sources: dict[str, Path], seen: tuple[str, ...]) -> dict[str, Any]:
    data = _read(sources[name])
    parent = data.get("extends")
    if parent is None:
        return data
    if parent in seen or parent == name or parent not in sources:
        raise PermanentError(
            f"ruleset file {sources[name]}: extends unknown or circular ruleset {parent!r}",
            code="ruleset_invalid",
            file=str(sources[name]),
        )
    return _deep_merge(_resolve(parent, sources, (*seen, name)), data)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if key == "cross":
            merged[key] = [*base.get("cross", []), *value]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _deep_merge(base[key], value)
        else:
            merged[key] = value
    return merged


def _invalid(path: Path, exc: ValidationError) -> PermanentError:
    where = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
    return PermanentError(
        f"ruleset file {path}: invalid: {where}", code="ruleset_invalid", file=str(path)
    )
