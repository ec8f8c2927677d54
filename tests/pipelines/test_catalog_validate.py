"""validate_csv_file: each rule's code on the row it belongs to, counts, report and samples."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from jobrunner.errors import PermanentError
from jobrunner.pipelines.catalog_rules import Ruleset, load_ruleset
from jobrunner.pipelines.catalog_validate import ValidationResult, validate_csv_file
from tests.pipelines.catalog_fixtures import ML_HEADER, ml_row, write_ml

ML = load_ruleset("mercado_livre", None, None)


def check(tmp_path: Path, rows: list[str], **kwargs: Any) -> ValidationResult:
    path = write_ml(tmp_path / "in.csv", rows, header=kwargs.pop("header", ML_HEADER))
    ruleset: Ruleset = kwargs.pop("ruleset", ML)
    return validate_csv_file(path, ruleset=ruleset, report_path=tmp_path / "report.csv", **kwargs)


def codes(result: ValidationResult) -> set[tuple[int, str, str]]:
    return {(e["row"], e["column"], e["code"]) for e in result.sample_errors}


def test_a_good_file_has_no_findings(tmp_path: Path) -> None:
    result = check(tmp_path, [ml_row(), ml_row(sku="A2", gtin="4006381333931")])
    assert (result.total_rows, result.valid_rows, result.error_count) == (2, 2, 0)
    assert result.sample_errors == []


@pytest.mark.parametrize(
    ("change", "column", "code"),
    [
        ({"title": "x" * 61}, "title", "max_length"),
        ({"title": ""}, "title", "required"),
        ({"price": "0", "sale_price": ""}, "price", "min"),
        ({"price": "ten"}, "price", "type_decimal"),
        ({"stock": "2.5"}, "stock", "type_int"),
        ({"stock": "-1"}, "stock", "min"),
        ({"gtin": "7891234567890"}, "gtin", "gtin_check_digit"),
        ({"gtin": "12345"}, "gtin", "type_gtin"),
        ({"condition": "broken"}, "condition", "one_of"),
        ({"condition": "NEW"}, "condition", "one_of"),
        ({"category_id": "1234"}, "category_id", "regex"),
        ({"sale_price": "11.00"}, "sale_price", "cross_field"),
        (
            {"pictures": "|".join(f"https://i.example.com/{i}.jpg" for i in range(11))},
            "pictures",
            "too_many_items",
        ),
        ({"pictures": "https://i.example.com/1.jpg;not a url"}, "pictures", "type_url"),
    ],
)
def test_each_rule_reports_its_code_on_its_line(
    tmp_path: Path, change: dict[str, str], column: str, code: str
) -> None:
    result = check(tmp_path, [ml_row(sku="A0"), ml_row(**change)])
    assert codes(result) == {(3, column, code)}
    assert result.errors_by_code == {code: 1}
    assert (result.valid_rows, result.invalid_rows) == (1, 1)


def test_ten_pictures_with_mixed_separators_are_fine(tmp_path: Path) -> None:
    urls = [f"https://i.example.com/{i}.jpg" for i in range(10)]
    pictures = urls[0] + "|" + ";".join(urls[1:5]) + "|" + "|".join(urls[5:])
    assert check(tmp_path, [ml_row(pictures=pictures)]).error_count == 0


def test_duplicates_are_found_across_batches(tmp_path: Path) -> None:
    rows = [ml_row(sku=f"S{i % 7}") for i in range(20)]
    result = check(tmp_path, rows, batch_rows=3)
    duplicate_rows = sorted(e["row"] for e in result.sample_errors if e["code"] == "duplicate")
    assert duplicate_rows == list(range(9, 22))  # S0..S6 first seen on lines 2..8


def test_missing_required_column_is_a_file_finding(tmp_path: Path) -> None:
    header = ML_HEADER.replace(",condition", "")
    row = ml_row().replace(",new,", ",")
    result = check(tmp_path, [row], header=header)
    assert codes(result) == {(1, "condition", "missing_column")}


def test_aliases_match_headers_loosely(tmp_path: Path) -> None:
    header = ML_HEADER.replace("category_id", "Category Name").replace("title", " TITULO ")
    result = check(tmp_path, [ml_row(category_id="bad")], header=header)
    assert codes(result) == {(2, "category_id", "regex")}


def test_category_adds_required_columns(tmp_path: Path) -> None:
    result = check(tmp_path, [ml_row()], category="electronics")
    assert {(e["column"], e["code"]) for e in result.sample_errors} == {
        ("brand", "missing_column"),
        ("model", "missing_column"),
    }
    with pytest.raises(PermanentError) as info:
        check(tmp_path, [ml_row()], category="garden")
    assert info.value.code == "unknown_category"


def test_report_has_every_finding_and_samples_are_capped(tmp_path: Path) -> None:
    rows = [ml_row(sku=f"S{i}", stock="x", price="0", sale_price="") for i in range(600)]
    result = check(tmp_path, rows, batch_rows=128)
    assert result.error_count == 1200
    assert len(result.sample_errors) == 1000
    with Path(result.report_path).open(newline="") as f:
        report = list(csv.DictReader(f))
    assert len(report) == 1200
    assert report[0] == {
        "row": "2",
        "column": "price",
        "code": "min",
        "message": "must be greater than 0",
        "value": "0",
    }
    assert [int(r["row"]) for r in report] == sorted(int(r["row"]) for r in report)


def test_max_rows_is_a_file_finding(tmp_path: Path) -> None:
    ruleset = ML.model_copy(update={"file": ML.file.model_copy(update={"max_rows": 2})})
    rows = [ml_row(sku=f"S{i}") for i in range(3)]
    result = check(tmp_path, rows, ruleset=ruleset)
    assert codes(result) == {(4, "*", "too_many_rows")}


def test_progress_is_a_fraction_ending_at_one(tmp_path: Path) -> None:
    seen: list[float] = []
    check(
        tmp_path,
        [ml_row(sku=f"S{i}") for i in range(10)],
        batch_rows=4,
        on_progress=lambda f, _m: seen.append(f),
    )
    assert len(seen) >= 3
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
