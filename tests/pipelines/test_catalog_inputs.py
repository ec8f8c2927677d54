"""Input handling: encodings, delimiters, decimal comma, quoted newlines and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobrunner.errors import PermanentError
from jobrunner.pipelines.catalog_rules import load_ruleset
from jobrunner.pipelines.catalog_validate import ValidationResult, validate_csv_file
from tests.pipelines.catalog_fixtures import ML_HEADER, ml_row, write_br, write_ml

ML = load_ruleset("default", "mercado_livre", None)


def run(path: Path, **kwargs: object) -> ValidationResult:
    return validate_csv_file(path, ruleset=ML, report_path=path.parent / "report.csv", **kwargs)  # type: ignore[arg-type]


def found(result: ValidationResult) -> set[tuple[int, str, str, str]]:
    return {(e["row"], e["column"], e["code"], e["value"]) for e in result.sample_errors}


@pytest.mark.parametrize(
    ("encoding", "bom", "reported"),
    [("cp1252", False, "cp1252"), ("utf-8", True, "utf-8-sig"), ("utf-8", False, "utf-8")],
)
def test_brazilian_excel_export(tmp_path: Path, encoding: str, bom: bool, reported: str) -> None:
    result = run(write_br(tmp_path / "br.csv", encoding=encoding, bom=bom))
    assert (result.encoding, result.delimiter, result.decimal_comma) == (reported, ";", True)
    assert result.total_rows == 3
    # "12,90" is a plain decimal-comma number; thousands and currency are findings. The
    # second record spans lines 3-4 (quoted newline), so the third starts on line 5.
    assert found(result) == {
        (2, "price", "type_decimal", "1.234,56"),
        (2, "condition", "one_of", "NEW"),
        (3, "price", "type_decimal", "R$ 5,00"),
        (3, "condition", "one_of", "usado"),
        (5, "gtin", "type_gtin", "36000291452"),
    }


def test_transcoded_text_keeps_accents(tmp_path: Path) -> None:
    out = tmp_path / "fixed.csv"
    run(write_br(tmp_path / "br.csv"), auto_fix=True, corrected_path=out)
    text = out.read_text(encoding="utf-8")
    assert "Café torrado" in text
    assert '"Açúcar\r\nrefinado"' in text or '"Açúcar\nrefinado"' in text
    assert not (tmp_path / ".br.utf8.csv").exists()  # the temporary copy is removed


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path: Path, sep: str) -> None:
    rows = [ml_row(), ml_row(sku="A2", stock="-4")]
    path = write_ml(
        tmp_path / "in.csv", [r.replace(",", sep) for r in rows], ML_HEADER.replace(",", sep)
    )
    result = run(path)
    assert result.delimiter == sep
    assert found(result) == {(3, "stock", "min", "-4")}


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(PermanentError) as info:
        run(path)
    assert info.value.code == "csv_empty"


def test_header_only_is_a_valid_empty_result(tmp_path: Path) -> None:
    result = run(write_ml(tmp_path / "h.csv", []))
    assert (result.total_rows, result.valid_rows, result.error_count) == (0, 0, 0)


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(PermanentError) as info:
        run(path)
    assert info.value.code == "csv_not_text"


def test_ragged_rows_are_findings(tmp_path: Path) -> None:
    path = write_ml(
        tmp_path / "r.csv", [ml_row(), ml_row(sku="A2") + ",extra,more", ml_row(sku="A3")]
    )
    result = run(path)
    assert {(e["row"], e["code"]) for e in result.sample_errors} == {(3, "ragged_row")}
    assert result.total_rows == 3


def test_short_rows_read_missing_fields_as_empty(tmp_path: Path) -> None:
    short = ",".join(ml_row(sku="A2").split(",")[:5])
    result = run(write_ml(tmp_path / "s.csv", [short]))
    assert {(e["column"], e["code"]) for e in result.sample_errors} == {
        ("gtin", "required"),
        ("condition", "required"),
        ("category_id", "required"),
    }


def test_unterminated_quote_is_a_clear_failure(tmp_path: Path) -> None:
    path = write_ml(tmp_path / "q.csv", [ml_row(), ml_row(sku='"A2'), ml_row(sku="A3")])
    with pytest.raises(PermanentError) as info:
        run(path)
    assert info.value.code == "csv_unreadable"
    assert "not properly escaped" in info.value.message
