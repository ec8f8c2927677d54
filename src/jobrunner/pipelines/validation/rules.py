"""Rulesets are data: TOML files, validated by the models below.

Schema (all keys optional unless said)::

    name = "mercado_livre"             # required; the file is <name>.toml
    marketplace = "mercado_livre"      # rulesets are looked up by marketplace or by name
    extends = "default"                # inherit columns, cross rules and categories
    description = "..."

    [file]
    max_rows = 1000000
    formulas = true                    # report cells a spreadsheet would run (``formula``)

    [columns.<canonical name>]
    aliases = ["Category Name"]        # header matching ignores case, spaces, '_' and '-'
    type = "string"                    # string|int|decimal|bool|date|url|email|gtin|list
    required = true                    # the column must exist and no value may be empty
    unique = true
    min = 0          max = 100         # numbers; min_exclusive = true makes min a '>'
    min_length = 1   max_length = 60   # characters
    pattern = "^MLB[0-9]+$"            # regular expression the whole value must match
    one_of = ["new", "used"]           # compared case-insensitively
    item_type = "url"  max_items = 10  # for type = "list" (items split on , | or ;)

    [[cross]]                          # compares two numeric columns on every row
    left = "sale_price"  op = "<="  right = "price"
    code = "sale_price_above_price"    message = "..."

    [categories.<name>]
    required = ["brand", "model"]      # extra columns required for this category
"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobrunner.errors import PermanentError

ColumnType = Literal["string", "int", "decimal", "bool", "date", "url", "email", "gtin", "list"]


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aliases: list[str] = Field(default_factory=list)
    type: ColumnType = "string"
    required: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None
    one_of: list[str] | None = None
    item_type: ColumnType | None = None
    max_items: int | None = Field(default=None, ge=1)


# what a cross rule's op means; operator's functions work on polars expressions as on numbers
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class Cross(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    right: str
    code: str = "cross_field"
    message: str | None = None


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: list[str] = Field(default_factory=list)


class FileRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_rows: int | None = Field(default=None, ge=1)
    formulas: bool | None = None  # None: as the ruleset it extends says (else off)


class Ruleset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    marketplace: str | None = None
    extends: str | None = None
    description: str = ""
    file: FileRules = Field(default_factory=FileRules)
    columns: dict[str, Column] = Field(default_factory=dict)
    cross: list[Cross] = Field(default_factory=list)
    categories: dict[str, Category] = Field(default_factory=dict)


def _sources(user_dir: Path | None) -> dict[str, str]:
    """Ruleset name -> TOML text; a user file overrides a shipped one of the same name."""
    found: dict[str, str] = {}
    shipped = resources.files("jobrunner.pipelines.validation").joinpath("rulesets")
    for entry in shipped.iterdir():
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = f"{entry}"
    if user_dir is not None and user_dir.is_dir():
        for file in sorted(user_dir.glob("*.toml")):
            found[file.stem] = str(file)
    return found


def available_rulesets(user_dir: Path | None = None) -> list[str]:
    return sorted(_sources(user_dir))


def _parse(name: str, location: str) -> Ruleset:
    path = Path(location)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PermanentError(
            f"ruleset {path.name} is not valid TOML: {exc}", code="ruleset_invalid", file=str(path)
        ) from exc
    try:
        return Ruleset.model_validate({"name": name, **data})
    except ValidationError as exc:
        where = "; ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())
        raise PermanentError(
            f"ruleset {path.name} is invalid: {where}", code="ruleset_invalid", file=str(path)
        ) from exc


def _merge(parent: Ruleset, child: Ruleset) -> Ruleset:
    columns = {**parent.columns, **child.columns}
    categories = {**parent.categories, **child.categories}
    file = parent.file.model_copy(update=child.file.model_dump(exclude_none=True))
    return child.model_copy(
        update={
            "columns": columns,
            "cross": [*parent.cross, *child.cross],
            "categories": categories,
            "file": file,
        }
    )


def choose_ruleset(ruleset: str | None, marketplace: str | None) -> str:
    """The one ruleset two params name: ``ruleset``, or its deprecated alias ``marketplace``,
    or ``default``. Different values in both raise ValueError (a params error at enqueue)."""
    if ruleset and marketplace and ruleset != marketplace:
        raise ValueError(
            f"ruleset {ruleset!r} and marketplace {marketplace!r} disagree; give only ruleset "
            "(marketplace is its deprecated alias)"
        )
    return ruleset or marketplace or "default"


def load_ruleset(
    name: str, marketplace: str | None = None, user_dir: Path | None = None
) -> Ruleset:
    """The ruleset ``choose_ruleset(name, marketplace)`` names, with what it extends merged
    in. Raises PermanentError ``unknown_ruleset`` (listing the available ones) or
    ``ruleset_invalid``."""
    sources = _sources(user_dir)
    wanted = choose_ruleset(None if name == "default" else name, marketplace)
    if wanted not in sources:
        raise PermanentError(
            f"unknown ruleset or marketplace {wanted!r}; available: {', '.join(sorted(sources))}",
            code="unknown_ruleset",
            available=sorted(sources),
        )
    ruleset = _parse(wanted, sources[wanted])
    seen = {wanted}
    while ruleset.extends:
        if ruleset.extends in seen or ruleset.extends not in sources:
            raise PermanentError(
                f"ruleset {wanted!r} extends unknown or circular {ruleset.extends!r}",
                code="ruleset_invalid",
            )
        seen.add(ruleset.extends)
        parent = _parse(ruleset.extends, sources[ruleset.extends])
        ruleset = _merge(parent, ruleset).model_copy(update={"extends": parent.extends})
    return ruleset
