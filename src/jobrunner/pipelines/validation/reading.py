"""Streaming a sniffed CSV in batches with canonical column names; polars errors made clear."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl

from jobrunner.errors import PermanentError
from jobrunner.pipelines.validation.rules import Ruleset
from jobrunner.pipelines.validation.sniff import Sniffed

ROW = "__row"
EXTRA = "__extra"


def _norm(name: str) -> str:
    """'Preço Promocional', 'preco_promocional' and 'PRECO-PROMOCIONAL' are one name."""
    bare = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff").casefold())
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return re.sub(r"[\s_\-]+", "", bare)


def header_mapping(header: list[str], ruleset: Ruleset) -> dict[str, str]:
    """Original header -> canonical column name, by name or alias (ignoring case, accents,
    spaces, '_' and '-')."""
    lookup: dict[str, str] = {}
    for name, column in ruleset.columns.items():
        for alias in [name, *column.aliases]:
            lookup.setdefault(_norm(alias), name)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for original in header:
        canonical = lookup.get(_norm(original), original.strip().lstrip("\ufeff"))
        if canonical in taken:  # two headers map to one column: keep the second as it is
            canonical = original
        mapping[original] = canonical
        taken.add(canonical)
    return mapping


class NotUtf8(Exception):
    """The file has bytes that are not UTF-8 past the part sniffing looked at."""


def scan(sniffed: Sniffed) -> pl.LazyFrame:
    """All columns as strings; ``__row`` is the record's number (the header is 1), and
    ``__extra`` the first field past the header's last column on rows that have more fields
    than the header (null elsewhere; the fields after it are dropped)."""
    header = columns_of(_scan(sniffed, has_header=True))
    schema = {name: pl.String for name in [*header, EXTRA]}
    return _scan(sniffed, has_header=False, skip_rows=1, schema=schema)


def _scan(sniffed: Sniffed, **options: Any) -> pl.LazyFrame:
    return pl.scan_csv(
        sniffed.path,
        separator=sniffed.delimiter,
        infer_schema=False,
        truncate_ragged_lines=True,
        # strict UTF-8 reads faster than lossy; a bad byte stops the read (see NotUtf8)
        encoding="utf8-lossy" if sniffed.lossy else "utf8",
        missing_columns="insert",  # fields a short row lacks are null
        raise_if_empty=False,
        row_index_name=ROW,
        row_index_offset=2,
        **options,
    )


def columns_of(lf: pl.LazyFrame) -> list[str]:
    """The file's columns as read (not the row number, not ``__extra``)."""
    try:
        return [c for c in lf.collect_schema().names() if c not in (ROW, EXTRA)]
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot parse the CSV header: {exc}", code="csv_unreadable") from exc


def batches(lf: pl.LazyFrame, mapping: dict[str, str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """The file in batches of at most ``batch_rows`` records, columns renamed to canonical."""
    with read_errors():
        for batch in lf.collect_batches(chunk_size=batch_rows):
            yield batch.rename(mapping)


@contextmanager
def read_errors() -> Iterator[None]:
    """polars' errors while reading the CSV as ours: NotUtf8, or a csv_unreadable failure."""
    try:
        yield
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower():
            raise NotUtf8(str(exc)) from exc
        raise PermanentError(f"cannot parse the CSV: {exc}", code="csv_unreadable") from exc
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot parse the CSV: {exc}", code="csv_unreadable") from exc
