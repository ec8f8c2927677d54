"""The batch loop shared by validation and correction: sniff, scan, fix, check, write.

The file is read by polars in batches of ``batch_rows`` records (never whole); the only
state carried between batches is the line offset, the row count and the 64-bit hashes of
the values of unique/key columns.

Row numbers are physical line numbers, the header being line 1: a record's number is the
line it starts on, so a record holding a quoted newline advances the count for the next
record by the number of newlines inside it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from jobrunner.errors import PermanentError
from jobrunner.pipelines.catalog_compile import EXTRA, Compiled, compile_rules
from jobrunner.pipelines.catalog_findings import Tally
from jobrunner.pipelines.catalog_fixes import CHANGE_SCHEMA, apply_fixes, fix_exprs
from jobrunner.pipelines.catalog_keys import KeyTracker, dedupe
from jobrunner.pipelines.catalog_rules import Ruleset
from jobrunner.pipelines.catalog_sniff import Sniffed, canonical_header, sniff

__all__ = ["Options", "Outcome", "run"]

Progress = Callable[[float, str], None]
_INDEX = "__idx"
LINE = "__line"


@dataclass(frozen=True)
class Options:
    ruleset: Ruleset
    category: str | None
    delimiter: str | None
    encoding: str | None
    fix: bool
    work_dir: Path
    report_path: Path | None
    corrected_path: Path | None = None
    changelog_path: Path | None = None
    on_progress: Progress | None = None
    batch_rows: int = 100_000


@dataclass
class Outcome:
    tally: Tally
    sniffed: Sniffed
    changes: int = 0
    changes_by_column: Counter[str] = field(default_factory=Counter)
    duration_ms: int = 0


def run(input_path: Path, opts: Options) -> Outcome:
    """Check (and with ``opts.fix``, correct) ``input_path``; see the module docstring."""
    started = time.perf_counter()
    if opts.batch_rows < 1:
        raise PermanentError("batch_rows must be at least 1", code="invalid_batch_rows")
    ruleset = opts.ruleset.for_category(opts.category)
    sniffed = sniff(input_path, opts.work_dir, encoding=opts.encoding, delimiter=opts.delimiter)
    mapping = canonical_header(sniffed.header, {n: r.aliases for n, r in ruleset.columns.items()})
    columns = list(mapping.values())
    # Fixed numbers are canonical ("1234.56"), so checks after fixing read '.' decimals.
    comma = sniffed.decimal_comma and not opts.fix
    compiled = compile_rules(ruleset, columns, decimal_comma=comma)
    outcome = Outcome(Tally(opts.report_path), sniffed)
    try:
        for name in compiled.missing:
            outcome.tally.file_finding(1, name, "missing_column", "required column is absent", "")
        with _Writers(opts, columns) as writers:
            writers.header_changes(mapping, outcome)
            batches = _batches(sniffed, columns, opts.batch_rows)
            _loop(batches, ruleset, compiled, opts, writers, outcome)
        _check_rows(ruleset, outcome)
    finally:
        outcome.tally.close()
        if sniffed.path != input_path:
            sniffed.path.unlink(missing_ok=True)  # the transcoded copy is ours to remove
    outcome.duration_ms = int((time.perf_counter() - started) * 1000)
    return outcome


class _Writers:
    """The corrected CSV and change log files, open for the length of the run."""

    def __init__(self, opts: Options, columns: list[str]) -> None:
        self._opts = opts
        self.columns = columns
        self._corrected = opts.corrected_path.open("wb") if opts.corrected_path else None
        self._changes = opts.changelog_path.open("wb") if opts.changelog_path else None

    def __enter__(self) -> _Writers:
        if self._corrected is not None:
            pl.DataFrame(schema=dict.fromkeys(self.columns, pl.String)).write_csv(self._corrected)
        if self._changes is not None:
            pl.DataFrame(schema=CHANGE_SCHEMA).write_csv(self._changes)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in (self._corrected, self._changes):
            if handle is not None:
                handle.close()

    def header_changes(self, mapping: dict[str, str], outcome: Outcome) -> None:
        renames = [(o, c) for o, c in mapping.items() if o.strip() != c]
        log = pl.DataFrame(
            {
                "row": [1] * len(renames),
                "column": [c for _, c in renames],
                "before": [o for o, _ in renames],
                "after": [c for _, c in renames],
            },
            schema=CHANGE_SCHEMA,
        )
        if self._opts.fix:
            self.changes(log, outcome)

    def changes(self, log: pl.DataFrame, outcome: Outcome) -> None:
        outcome.changes += log.height
        for name, count in log.group_by("column").len().iter_rows():
            outcome.changes_by_column[name] += count
        if self._changes is not None and log.height:
            log.write_csv(self._changes, include_header=False)

    def rows(self, batch: pl.DataFrame) -> None:
        if self._corrected is not None:
            batch.select(self.columns).write_csv(self._corrected, include_header=False)


def _batches(sniffed: Sniffed, columns: list[str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """Records as strings under canonical names, with ``__line`` and ``__extra``."""
    # Read positionally (has_header=False, header skipped as a record, quote-aware) with one
    # spare column: a record with too many fields fills it, so ragged rows become findings.
    positional = [f"__c{i}" for i in range(len(columns))]
    lf = pl.scan_csv(
        sniffed.path,
        has_header=False,
        skip_rows=1,
        separator=sniffed.delimiter,
        schema=dict.fromkeys([*positional, EXTRA], pl.String),
        missing_columns="insert",
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
        raise_if_empty=False,
        row_index_name=_INDEX,
    ).rename(dict(zip(positional, columns, strict=True)))
    carried = 0
    try:
        for batch in lf.collect_batches(chunk_size=batch_rows):
            batch = batch.with_columns(_newlines(batch, columns).alias("__nl"))
            before = pl.col("__nl").cum_sum() - pl.col("__nl") + carried
            carried += int(batch["__nl"].sum())
            yield batch.with_columns((pl.col(_INDEX).cast(pl.Int64) + 2 + before).alias(LINE))
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot parse the CSV: {exc}", code="csv_unreadable") from exc


def _newlines(batch: pl.DataFrame, columns: list[str]) -> pl.Series:
    # Most batches hold no quoted newline: a cheap memchr test per column skips the count.
    holders = [c for c in columns if batch[c].str.contains("\n", literal=True).any()]
    if not holders:
        return pl.repeat(0, batch.height, dtype=pl.UInt32, eager=True)
    counts = (pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in holders)
    return batch.select(pl.sum_horizontal(counts).cast(pl.UInt32)).to_series()


def _loop(
    batches: Iterator[pl.DataFrame],
    ruleset: Ruleset,
    compiled: Compiled,
    opts: Options,
    writers: _Writers,
    outcome: Outcome,
) -> None:
    columns = writers.columns
    fixes = fix_exprs(ruleset, columns, decimal_comma=outcome.sniffed.decimal_comma)
    keys = [k for k in (ruleset.dedupe_key or compiled.unique) if k in columns]
    seen = pl.Series(dtype=pl.UInt64)
    tracker = KeyTracker(compiled.unique)
    values = [pl.col(c).alias(f"__v:{c}") for c in columns]
    masks = [c.mask.alias(f"__m{i}") for i, c in enumerate(compiled.checks)]
    try:
        for batch in batches:
            if opts.fix:
                batch, log = apply_fixes(batch, fixes, columns, LINE)
                if keys:
                    batch, removed, seen = dedupe(batch, keys, seen, LINE)
                    log = pl.concat([log, removed]).sort("row", maintain_order=True)
                writers.changes(log, outcome)
            flagged = tracker.flag(batch)
            found = flagged.lazy().with_columns(compiled.features)
            outcome.tally.add_batch(
                found.select(LINE, *masks, *values).collect(), compiled.checks, LINE
            )
            writers.rows(batch)
            _progress(opts, outcome)
    except pl.exceptions.PolarsError as exc:
        raise PermanentError(f"cannot check the CSV: {exc}", code="csv_unreadable") from exc


def _progress(opts: Options, outcome: Outcome) -> None:
    if opts.on_progress is not None:
        done = outcome.tally.total_rows
        fraction = min(done / max(outcome.sniffed.estimated_rows, 1), 0.99)
        opts.on_progress(fraction, f"{done} rows checked")


def _check_rows(ruleset: Ruleset, outcome: Outcome) -> None:
    limit = ruleset.file.max_rows
    if limit is not None and outcome.tally.total_rows > limit:
        message = f"the file has {outcome.tally.total_rows} rows; at most {limit} are allowed"
        outcome.tally.file_finding(limit + 2, "*", "too_many_rows", message, "")
