"""The screen may send clean rows on to the full checks but must never clear a row with a
finding: checked here on hostile values of every column type, and on the clean values it
exists to clear."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobrunner.pipelines.validation.checks import compile_checks
from jobrunner.pipelines.validation.findings import findings_of
from jobrunner.pipelines.validation.reading import EXTRA, ROW
from jobrunner.pipelines.validation.rules import Ruleset, load_ruleset
from jobrunner.pipelines.validation.screen import OK, edges_never_space, screened

RULESET = """
[file]
formulas = true

[columns.code]
type = "string"
required = true
unique = true
min_length = 2
max_length = 6
pattern = "^[A-Z]{2}[0-9]*$"

[columns.name]
type = "string"
max_length = 5

[columns.ref]
type = "string"
required = true
pattern = "^[A-Z]{2}[0-9]+$"

[columns.price]
type = "decimal"
required = true
min = 0
min_exclusive = true
max = 1000

[columns.promo]
type = "decimal"
min = 0

[columns.qty]
type = "int"
min = 0
max = 100

[columns.ean]
type = "gtin"

[columns.active]
type = "bool"
required = true

[columns.since]
type = "date"

[columns.site]
type = "url"

[columns.mail]
type = "email"

[columns.state]
type = "string"
one_of = ["new", "used", " odd "]

[columns.tags]
type = "list"
required = true
max_items = 3

[columns.pics]
type = "list"
item_type = "url"
max_items = 2

[columns.text_num]
type = "string"
max_length = 8

[[cross]]
left = "promo"
op = "<="
right = "price"
code = "promo_above_price"

[[cross]]
left = "qty"
op = "<"
right = "text_num"
code = "qty_vs_text"

[categories.gear]
required = ["name", "extra"]
"""

SPACES = ["", " ", "\t", "\u00a0", "\u2003"]
NUMBERS = [
    "12,5", "12.5", "0", "-0", "0,0", "1000", "1000,01", "1.234,56", "1,234.56", "1,234",
    "1.234", "-1", "+5", "5.", ",5", ".5", "1e3", "1e400", "-1e400", "nan", "NaN", "inf",
    "-inf", "infinity", "1,2,3", "1_0", "0x10", "R$ 5", "5,00 R$", "\u0661\u0662", "abc", "",
    "99", "100", "101", "007", "1.5e2", "=5", "+5-", "-1+2", "@5", "+.5", "-5e-3",
]  # fmt: skip
GTINS = [
    "7891234567895", "07891234567895", "96385074", "12345670", "789123456789", "0000000000000",
    "00000000", "-0000000", "+7891234567895", "7891234567890", "789123456789a", "9638507",
    "7 891234567895", "00000000000000", "-7891234567895",
]  # fmt: skip
TEXTS = [
    "AB", "AB1", "ABC", "A", "ab", "AB12345", "ÉB1", "AB\u00a0", "\u00a0AB", "A B",
    "\u2003", "x" * 5, "x" * 6, "é" * 5, "é" * 6, "new", "New", "NEW", "used", " odd ", "odd",
    # formula-like (OWASP), and look-alikes that are not
    "=1+1", "+SUM(A1)", "-x", "@SUM(A1)", "\t=1", "\r=1", "=", "-", "+5", "-5,5", "'=x", "A=1",
    "\n=1", "(=1)", ".5",
]  # fmt: skip
BOOLS = ["true", "True", "TRUE", "1", "0", "sim", "não", "maybe", "y", "yes "]
DATES = ["2024-01-05", "2024-1-5", "05/01/2024", "5/1/2024", "2024-13-01", "2024/01/05", "x"]
URLS = ["https://a.example/x", "http://a", "http://", "https://a b", "ftp://a", "https://"]
MAILS = ["a@b.co", "a@b", "a b@c.de", "@b.co", "a@@b.co", "=a@b.co", "+a@b.co", "-a@b.co"]
LISTS = [
    "a", "a|b", "a|b|c", "a|b|c|d", "a;b,c", "|a|", ",,", "a||b", "a, b", "a | b | c | d",
    "https://a/1", "https://a/1|https://b/2", "https://a/1;https://b/2,https://c/3",
    "https://a/1|", "|https://a/1", "https://a/1||https://b/2", "http://|http://b",
    "https://a/1 https://b/2", "https://a/1|ftp://b", "https://a\u00a0/1", "https://a/1, https://b/2",
]  # fmt: skip


CLEAN = {
    "code": "AB12",
    "name": "Shirt",
    "ref": "AB12",
    "price": "12,5",
    "promo": "9.9",
    "qty": "7",
    "ean": "7891234567895",
    "active": "true",
    "since": "2024-01-05",
    "site": "https://a.example/x",
    "mail": "a@b.co",
    "state": "used",
    "tags": "a|b",
    "pics": "https://a/1|https://b/2",
    "text_num": "8",
    "extra": "x",
}
POOLS = {
    "code": TEXTS,
    "name": TEXTS,
    "ref": TEXTS,
    "price": NUMBERS,
    "promo": NUMBERS,
    "qty": NUMBERS,
    "ean": GTINS,
    "active": BOOLS,
    "since": DATES,
    "site": URLS,
    "mail": MAILS,
    "state": TEXTS,
    "tags": LISTS,
    "pics": LISTS,
    "text_num": NUMBERS,
    "extra": TEXTS,
    EXTRA: ["x", ""],  # a field past the header's last column
}


def _variants(value: str) -> list[str | None]:
    return [None, value, *(s + value for s in SPACES[1:]), *(value + s for s in SPACES[1:])]


def _frame(
    clean: dict[str, str],
    pools: dict[str, list[str]],
    pairs: list[tuple[str, str]],
    noisy_rows: int,
    seed: int,
) -> pl.DataFrame:
    """A clean row with each hostile value (bare, missing, spaced) put in each column in turn;
    every pair of numbers in the cross-rule columns; then rows hostile everywhere."""
    rows: list[dict[str, str | None]] = []
    for name, pool in pools.items():
        rows += [{**clean, name: v} for value in pool for v in _variants(value)]
    for left, right in pairs:
        rows += [{**clean, left: a, right: b} for a in NUMBERS for b in NUMBERS]
    rng = random.Random(seed)
    for _ in range(noisy_rows):
        rows.append({n: rng.choice(_variants(rng.choice(pool))) for n, pool in pools.items()})
    return pl.DataFrame(rows, schema={n: pl.String for n in pools}).with_row_index(ROW, offset=2)


def _hostile_frame() -> pl.DataFrame:
    return _frame(CLEAN, POOLS, [("promo", "price"), ("qty", "text_num")], 5_000, seed=11)


def _ruleset(tmp_path: Path) -> Ruleset:
    (tmp_path / "hostile.toml").write_text(RULESET, encoding="utf-8")
    return load_ruleset("hostile", user_dir=tmp_path)


def _cleared_and_flagged(
    frame: pl.DataFrame, ruleset: Ruleset, category: str | None
) -> tuple[set[int], set[int]]:
    """Rows the screen clears, rows the full checks flag; and the findings the run reports
    (full checks only where the screen's flags say so) must be exactly the full checks'."""
    present = set(frame.columns) - {ROW}
    checks = compile_checks(ruleset, present, category)
    with_flags = screened(frame.lazy(), ruleset, present, category).collect()
    findings = findings_of(frame.lazy(), ruleset, checks)  # the full checks on every row
    as_run = findings_of(with_flags.lazy().filter(~pl.col(OK)), ruleset, checks)
    assert_frame_equal(as_run, findings)
    cleared = with_flags.filter(pl.col(OK))
    return set(cleared[ROW].to_list()), set(findings["row"].to_list())


def test_screen_never_clears_a_row_the_full_checks_flag(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path)
    frame = _hostile_frame()
    for category in (None, "gear"):
        cleared, flagged = _cleared_and_flagged(frame, ruleset, category)
        assert not cleared & flagged, frame.filter(pl.col(ROW).is_in(cleared & flagged)).head()
        # neither side is vacuous: many rows are cleared, many flagged
        assert len(cleared) > 500 and len(flagged) > 500, (len(cleared), len(flagged))


def test_screen_clears_plain_clean_rows(tmp_path: Path) -> None:
    """Its reason to exist: values as spreadsheets write them need no full check."""
    ruleset = _ruleset(tmp_path)
    frame = pl.DataFrame([CLEAN, {**CLEAN, "promo": None, "site": None}]).with_row_index(
        ROW, offset=2
    )
    cleared, flagged = _cleared_and_flagged(frame, ruleset, "gear")
    assert flagged == set()
    assert cleared == {2, 3}


@pytest.mark.parametrize(
    ("pattern", "on_raw"),
    [
        ("^ML[A-Z][0-9]+$", True),
        ("^[A-Z]{2}[0-9]{3}$", True),
        ("^[a-z]{1,2}B$", True),
        ("^AB$", True),
        ("^[A-Z]{2}[0-9]*$", False),  # the last atom may be skipped: not recognised
        ("^[A-Z]{2}[0-9]{0,3}$", False),
        ("^a? B$", False),  # the first atom may be skipped, leaving a space first
        ("^ ?AB$", False),
        ("^[a-z ]+$", False),
        ("^[^x]+$", False),
        ("^.+$", False),
        ("^\\d+$", False),  # safe, but not recognised: the narrow reading answers False
        ("^a|b$", False),
        ("^x\\$", False),  # an escaped dollar is no anchor
        ("^a\\+$", False),
        ("^(ab)+$", False),
        ("MLB1", False),
        ("^$", False),
    ],
)
def test_patterns_matched_as_written_only_when_no_match_can_have_edge_spaces(
    pattern: str, on_raw: bool
) -> None:
    assert edges_never_space(pattern) is on_raw


def test_shipped_rulesets_screen_soundly(tmp_path: Path) -> None:
    """The shipped rulesets on the same hostile values, their columns renamed to fit."""
    clean = {
        "sku": "AB12",
        "title": "Camiseta azul",
        "price": "12,5",
        "sale_price": "9.9",
        "stock": "7",
        "gtin": "7891234567895",
        "condition": "new",
        "category_id": "MLB123",
        "pictures": "https://a/1|https://b/2",
        "brand": "Acme",
        "model": "X1",
    }
    ids = ["MLB123", "MLA1", "MLB", "mlb1", "ML1"]
    pools = {
        "sku": TEXTS,
        "title": TEXTS,
        "price": NUMBERS,
        "sale_price": NUMBERS,
        "stock": NUMBERS,
        "gtin": GTINS,
        "condition": TEXTS,
        "category_id": TEXTS + ids,
        "pictures": LISTS,
        "brand": TEXTS,
        "model": TEXTS,
    }
    frame = _frame(clean, pools, [("sale_price", "price")], 2_000, seed=5)
    for name in ("default", "mercado_livre", "amazon", "shopee"):
        ruleset = load_ruleset(name)
        cleared, flagged = _cleared_and_flagged(frame, ruleset, "electronics")
        assert not cleared & flagged, (name, sorted(cleared & flagged)[:10])
        assert cleared and flagged, name
