"""Corrections: the fixed CSV, the change log, and validation after auto_fix."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from jobrunner.pipelines.catalog_correct import correct_csv_file
from jobrunner.pipelines.catalog_rules import load_ruleset
from jobrunner.pipelines.catalog_validate import validate_csv_file
from tests.pipelines.catalog_fixtures import ml_row, write_br, write_ml

ML = load_ruleset("mercado_livre", None, None)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_brazilian_file_is_corrected(tmp_path: Path) -> None:
    fixed, log = tmp_path / "fixed.csv", tmp_path / "changes.csv"
    result = correct_csv_file(
        write_br(tmp_path / "br.csv"), ruleset=ML, corrected_path=fixed, changelog_path=log
    )
    rows = read(fixed)
    assert list(rows[0]) == ["sku", "title", "price", "stock", "gtin", "condition", "category_id"]
    assert [r["price"] for r in rows] == ["1234.56", "5.00", "12.90"]
    assert [r["condition"] for r in rows] == ["new", "usado", "used"]  # "usado" is no enum case
    assert rows[2]["gtin"] == "0036000291452"
    changes = {(c["row"], c["column"], c["before"], c["after"]) for c in read(log)}
    assert ("2", "price", "1.234,56", "1234.56") in changes
    assert ("5", "gtin", "36000291452", "0036000291452") in changes
    assert ("1", "title", "Título", "title") in changes
    assert result.rows == 3
    assert result.changes == len(changes)
    assert result.changes_by_column["price"] == 4  # three values and the header's rename


FIXABLE_ROWS = [
    ml_row(title="  Camiseta  ", condition="USED", price='"R$ 10,50"', sale_price=""),
    ml_row(sku="A1", stock="-2"),  # duplicate key: removed by the fix
    ml_row(sku="A3", stock="x"),  # not fixable
]


def test_without_fix_the_same_rows_fail(tmp_path: Path) -> None:
    path = write_ml(tmp_path / "in.csv", FIXABLE_ROWS)
    plain = validate_csv_file(path, ruleset=ML, report_path=tmp_path / "r1.csv")
    assert plain.errors_by_code == {
        "one_of": 1,
        "type_decimal": 1,
        "duplicate": 1,
        "min": 1,
        "type_int": 1,
    }


def test_auto_fix_validates_the_corrected_rows(tmp_path: Path) -> None:
    path = write_ml(tmp_path / "in.csv", FIXABLE_ROWS)
    fixed = validate_csv_file(
        path,
        ruleset=ML,
        report_path=tmp_path / "r2.csv",
        auto_fix=True,
        corrected_path=tmp_path / "fixed.csv",
        changelog_path=tmp_path / "log.csv",
    )
    assert fixed.errors_by_code == {"type_int": 1}
    assert fixed.total_rows == 2
    out = pl.read_csv(tmp_path / "fixed.csv", infer_schema=False)
    assert out.rows() == [
        (
            "A1",
            "Camiseta",
            "10.50",
            None,
            "3",
            "7891234567895",
            "used",
            "MLB1234",
            "https://img.example.com/1.jpg",
        ),
        (
            "A3",
            "Camiseta azul",
            "10.50",
            "9.90",
            "x",
            "7891234567895",
            "new",
            "MLB1234",
            "https://img.example.com/1.jpg",
        ),
    ]
    assert fixed.changes == 4  # title, condition, price, the removed duplicate


def test_a_clean_file_needs_no_changes(tmp_path: Path) -> None:
    result = correct_csv_file(
        write_ml(tmp_path / "in.csv", [ml_row(), ml_row(sku="A2")]),
        ruleset=ML,
        corrected_path=tmp_path / "f.csv",
        changelog_path=tmp_path / "c.csv",
    )
    assert (result.rows, result.changes) == (2, 0)
    assert read(tmp_path / "c.csv") == []
