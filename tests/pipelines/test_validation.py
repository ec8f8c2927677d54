"""CSV validation and correction on small generated files, Brazilian-Excel style included."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from jobrunner.errors import PermanentError
from jobrunner.pipelines.validation import report_file
from jobrunner.pipelines.validation.fixes import fix_plan
from jobrunner.pipelines.validation.rules import available_rulesets, load_ruleset
from jobrunner.pipelines.validation.run import correct_csv_file, validate_csv_file

HEADER = "sku;titulo;preco;sale_price;estoque;ean;condition;category;pictures"
GOOD = "A1;Camiseta azul;1.234,56;1000,00;10;7891234567895;new;MLB123;http://img/a.jpg|http://img/b.jpg"
BAD = "A2;X;-5;;abc;7891234567890;broken;XX1;notaurl"


def write(tmp_path: Path, text: str, *, encoding: str = "utf-8", name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(tmp_path: Path, path: Path, ruleset: str = "mercado_livre", **kwargs: object):  # type: ignore[no-untyped-def]
    return validate_csv_file(
        path,
        ruleset=load_ruleset("default", ruleset),
        report_path=tmp_path / "report.csv",
        **kwargs,
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("cp1252", False)]
)
def test_brazilian_excel_file_is_read_in_any_encoding(
    tmp_path: Path, encoding: str, bom: bool
) -> None:
    text = f"{HEADER}\n{GOOD}\nA3;Calção térmico;19,90;;5;;used;MLB7;\n"
    path = write(tmp_path, ("\ufeff" if bom else "") + text, encoding=encoding)
    result = run(tmp_path, path)
    assert result.delimiter == ";"
    assert result.total_rows == 2
    assert result.valid_rows == 2, result.sample_errors
    assert result.columns["titulo"] == "title"
    assert result.columns["ean"] == "gtin"


def test_each_rule_reports_its_code_with_the_row_number(tmp_path: Path) -> None:
    result = run(tmp_path, write(tmp_path, f"{HEADER}\n{GOOD}\n{BAD}\n"))
    assert result.total_rows == 2 and result.invalid_rows == 1
    codes = {(e["row"], e["column"], e["code"]) for e in result.sample_errors}
    assert codes == {
        (3, "title", "min_length"),
        (3, "price", "min"),
        (3, "stock", "type_int"),
        (3, "gtin", "type_gtin"),
        (3, "condition", "one_of"),
        (3, "category_id", "pattern"),
        (3, "pictures", "type_url"),
    }
    report = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert len(report) == result.error_count == 7
    assert {r["value"] for r in report} >= {"abc", "broken", "XX1"}


def test_cross_field_duplicates_lengths_and_item_counts(tmp_path: Path) -> None:
    long_title = "T" * 61
    pics = "|".join(f"http://img/{i}.jpg" for i in range(11))
    rows = [
        "B1;Produto um;10,00;20,00;1;;new;MLB1;",  # sale price above price
        f"B2;{long_title};10,00;;1;;new;MLB1;{pics}",  # too long, too many pictures
        "B1;Produto dup;10,00;;1;;new;MLB1;",  # duplicate sku
    ]
    result = run(tmp_path, write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"), batch_rows=1)
    assert result.errors_by_code == {
        "sale_price_above_price": 1,
        "max_length": 1,
        "too_many_items": 1,
        "duplicate": 1,
    }
    dup = next(e for e in result.sample_errors if e["code"] == "duplicate")
    assert dup["row"] == 4  # found across batches of one row
    assert dup["message"] == "sku repeats row 2" and dup["value"] == "B1"


@pytest.mark.parametrize("hold_rows", [500_000, 1])  # merged in memory / by rewriting
def test_duplicates_are_merged_into_the_report_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold_rows: int
) -> None:
    monkeypatch.setattr(report_file, "HOLD_ROWS", hold_rows)
    rows = [f"K{i % 3};Produto {i};-1;;1;;new;MLB1;" for i in range(7)]  # K0 K1 K2 K0 ...
    rows.append(" K1 ;Produto 8;10;;1;;new;MLB1;")  # the same key once trimmed
    result = run(tmp_path, write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"), batch_rows=2)
    report = list(csv.DictReader((tmp_path / "report.csv").open()))
    assert [int(r["row"]) for r in report] == sorted(int(r["row"]) for r in report)
    dups = [(int(r["row"]), r["message"]) for r in report if r["code"] == "duplicate"]
    assert dups == [
        (5, "sku repeats row 2"),
        (6, "sku repeats row 3"),
        (7, "sku repeats row 4"),
        (8, "sku repeats row 2"),
        (9, "sku repeats row 3"),
    ]
    assert result.errors_by_code == {"min": 7, "duplicate": 5}
    assert result.invalid_rows == 8  # row 9 has only its duplicate key; rows 2-8 a bad price
    assert [e["row"] for e in result.sample_errors] == [int(r["row"]) for r in report]


def test_not_a_number_is_no_price(tmp_path: Path) -> None:
    rows = [f"A{i};Produto {i};{p};;1;;new;MLB1;" for i, p in enumerate(["nan", "inf", "1e3"])]
    result = run(tmp_path, write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert [(e["row"], e["code"]) for e in result.sample_errors] == [
        (2, "type_decimal"),
        (3, "type_decimal"),
    ]


def _ascii_head_then(tail: bytes) -> bytes:
    """More plain-ASCII rows than the sniffer reads, then ``tail``."""
    head = "".join(f"S{i};Produto {i};10,00;;1;;new;MLB1;\n" for i in range(3000))
    return (HEADER + "\n" + head).encode() + tail


def test_latin1_accents_past_the_sniffed_head_are_transcoded(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_bytes(_ascii_head_then("Z1;Calção;10,00;;1;;new;MLB1;\n".encode("cp1252")))
    result = run(tmp_path, path, batch_rows=1000)
    assert result.encoding == "cp1252"
    assert (result.total_rows, result.invalid_rows) == (3001, 0)
    report_path = tmp_path / "fixed.csv"
    correct_csv_file(
        path,
        ruleset=load_ruleset("default", "mercado_livre"),
        corrected_path=report_path,
        changelog_path=tmp_path / "log.csv",
        report_path=tmp_path / "after.csv",
    )
    assert "Z1,Calção," in report_path.read_text(encoding="utf-8")


def test_stray_bad_bytes_in_a_utf8_file_are_replaced(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    tail = "Z1;Calção;10,00;;1;;new;MLB1;\n".encode() + b"Z2;Caf\xe9;10,00;;1;;new;MLB1;\n"
    path.write_bytes(_ascii_head_then(tail))
    result = run(tmp_path, path, batch_rows=1000)
    assert result.encoding == "utf-8"
    assert (result.total_rows, result.invalid_rows) == (3002, 0)


def test_headers_match_aliases_whatever_their_case_accents_and_spacing(tmp_path: Path) -> None:
    header = "SKU;Título;PREÇO;Preço Promocional;Estoque;EAN;Condição;Category Name;Fotos"
    result = run(tmp_path, write(tmp_path, f"{header}\n{GOOD}\n"))
    assert result.valid_rows == 1, result.sample_errors
    assert result.columns == {
        "Título": "title",
        "PREÇO": "price",
        "Preço Promocional": "sale_price",
        "Estoque": "stock",
        "EAN": "gtin",
        "Condição": "condition",
        "Category Name": "category_id",
        "Fotos": "pictures",
        "SKU": "sku",
    }


def test_columns_no_rule_reads_are_skipped_and_plain_ones_accepted(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.toml").write_text(
        'extends = "default"\n[columns.color]\ntype = "string"\n'  # declared, no constraint
        '[[cross]]\nleft = "cost"\nop = "<="\nright = "price"\ncode = "cost_above_price"\n'
    )
    ruleset = load_ruleset("mine", user_dir=tmp_path / "rules")
    text = "sku,title,price,color,cost,notes\nA,Shirt,10,blue,12,anything\nB,Cap,5,,1,\n"
    result = validate_csv_file(
        write(tmp_path, text), ruleset=ruleset, report_path=tmp_path / "report.csv"
    )
    assert [(e["row"], e["code"]) for e in result.sample_errors] == [(2, "cost_above_price")]
    assert result.total_rows == 2


def test_missing_required_column_spoils_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, "sku,title,price\nA,Shirt,10\n")
    result = run(tmp_path, path)
    missing = {e["column"] for e in result.file_errors if e["code"] == "missing_column"}
    assert missing == {"condition", "category_id", "stock"}
    assert result.valid_rows == 0 and result.invalid_rows == 1


def test_category_rules_add_required_columns(tmp_path: Path) -> None:
    text = f"{HEADER};brand;model\n{GOOD};;\n"
    result = run(tmp_path, write(tmp_path, text), category="electronics")
    assert {e["column"] for e in result.sample_errors if e["code"] == "required"} == {
        "brand",
        "model",
    }
    assert run(tmp_path, write(tmp_path, text)).valid_rows == 1


def test_quoted_newline_and_ragged_rows(tmp_path: Path) -> None:
    text = 'sku,title,price\nA,"two\nlines",10\nB,Short\nC,Fine,1,extra,more\nD,"a,b",2\n'
    result = run(tmp_path, write(tmp_path, text), ruleset="default")
    assert result.total_rows == 4
    assert [(e["row"], e["column"], e["code"]) for e in result.sample_errors] == [
        (3, "price", "required"),  # a short row's missing fields are empty
        (4, "*", "ragged_row"),  # a long row is reported, not silently cut
    ]
    ragged = result.sample_errors[1]
    assert ragged["value"] == "extra"
    assert ragged["message"] == (
        "the row has more fields than the header's 3; the extra ones are ignored"
    )
    assert result.invalid_rows == 2 and result.errors_by_column == {"price": 1, "*": 1}


def test_header_only_is_a_valid_empty_result(tmp_path: Path) -> None:
    result = run(tmp_path, write(tmp_path, "sku,title,price\n"), ruleset="default")
    assert (result.total_rows, result.error_count) == (0, 0)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "csv_empty"),
        (b"\n\n  \n", "csv_empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "csv_not_text"),
    ],
)
def test_unusable_files_fail_with_a_stable_code(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(PermanentError) as info:
        run(tmp_path, path)
    assert info.value.code == code


def test_unknown_ruleset_lists_the_available_ones() -> None:
    with pytest.raises(PermanentError) as info:
        load_ruleset("default", "ebay")
    assert info.value.code == "unknown_ruleset"
    assert "mercado_livre" in info.value.message
    assert set(available_rulesets()) >= {"default", "mercado_livre", "amazon", "shopee"}


def test_broken_user_ruleset_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\n[columns.sku\ntype = "string"\n')
    with pytest.raises(PermanentError) as info:
        load_ruleset("mine", None, tmp_path)
    assert info.value.code == "ruleset_invalid"
    assert "mine.toml" in info.value.message and "line 2" in info.value.message
    (tmp_path / "typo.toml").write_text('[columns.sku]\ntype = "strng"\n')
    with pytest.raises(PermanentError, match=r"typo.toml.*columns.sku.type"):
        load_ruleset("typo", None, tmp_path)


def test_user_ruleset_extends_a_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "strict.toml").write_text(
        'extends = "default"\n[columns.title]\ntype = "string"\nrequired = true\nmax_length = 5\n'
    )
    ruleset = load_ruleset("strict", None, tmp_path)
    assert ruleset.columns["title"].max_length == 5 and "price" in ruleset.columns


def test_correction_fixes_values_drops_duplicates_and_logs_changes(tmp_path: Path) -> None:
    text = (
        f"{HEADER}\n"
        "A1; Camisa ;R$ 1.234,56;1000,00;10;36000291452;NEW;MLB1;http://a/1.jpg | http://a/2.jpg\n"
        "A1;Camisa dup;10,00;;1;;new;MLB1;\n"
    )
    result = correct_csv_file(
        write(tmp_path, text),
        ruleset=load_ruleset("default", "mercado_livre"),
        corrected_path=tmp_path / "fixed.csv",
        changelog_path=tmp_path / "log.csv",
        report_path=tmp_path / "report.csv",
    )
    fixed = list(csv.DictReader((tmp_path / "fixed.csv").open()))
    assert len(fixed) == 1
    row = fixed[0]
    assert (row["title"], row["price"], row["sale_price"]) == ("Camisa", "1234.56", "1000.00")
    assert row["condition"] == "new"
    assert row["gtin"] == "0036000291452"  # the zeros a spreadsheet dropped, restored
    assert row["pictures"] == "http://a/1.jpg,http://a/2.jpg"
    log = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert {"row": "2", "column": "price", "before": "R$ 1.234,56", "after": "1234.56"} in log
    assert any(r["column"] == "*" and r["row"] == "3" for r in log)
    assert result.valid_rows == 1
    assert result.changes == len(log)


def test_row_limit_is_a_file_error(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text('extends = "default"\n[file]\nmax_rows = 1\n')
    path = write(tmp_path, "sku,title,price\nA,Shirt,1\nB,Hats,2\n")
    result = validate_csv_file(
        path, ruleset=load_ruleset("tiny", None, tmp_path), report_path=tmp_path / "r.csv"
    )
    assert [e["code"] for e in result.file_errors] == ["too_many_rows"]
    assert result.valid_rows == 0


def test_correction_keeps_the_header_columns_of_a_ragged_file(tmp_path: Path) -> None:
    path = write(tmp_path, "sku,title,price\nA, Shirt ,10\nB,Cap,5,oops\n")
    result = correct_csv_file(
        path,
        ruleset=load_ruleset("default"),
        corrected_path=tmp_path / "fixed.csv",
        changelog_path=tmp_path / "log.csv",
        report_path=tmp_path / "report.csv",
    )
    assert (tmp_path / "fixed.csv").read_text().splitlines() == [
        "sku,title,price",
        "A,Shirt,10",
        "B,Cap,5",
    ]
    assert result.errors_by_code == {"ragged_row": 1}


@pytest.mark.parametrize(
    ("value", "fixed"),
    [
        ("36000291452", "0036000291452"),  # 11 digits whose padded GTIN checks out
        ("36000291453", "36000291453"),  # wrong check digit: left as it is
        ("96385074", "0000096385074"),  # a GTIN-8
        ("789 1234-567895", "7891234567895"),  # spaces and dashes go
        ("+36000291452", "+36000291452"),  # a sign is no digit
        ("1234567", "1234567"),  # too short to be a GTIN
        (" 07891234567895 ", "07891234567895"),  # 14 digits: trimmed only
    ],
)
def test_gtin_fix_restores_dropped_zeros_only_where_the_code_checks_out(
    value: str, fixed: str
) -> None:
    ruleset = load_ruleset("default")
    frame = pl.DataFrame({"gtin": [value]})
    assert fix_plan(ruleset, ["gtin"]).apply(frame).to_dicts() == [{"gtin": fixed}]
