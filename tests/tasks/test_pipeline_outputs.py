"""What pipeline jobs write and answer: no live formula in any CSV output, one param for
the ruleset, reports over a decimal-comma catalog, PDFs pdfium refuses read by pypdf."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from fpdf import FPDF

from jobrunner.domain.status import JobStatus
from jobrunner.errors import InvalidParamsError
from tests.tasks.pipeline_worker import Rig, pipeline_worker

FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://x","y")', "+SUM(A1:A2)", "@SUM(A1)"]
ARMED_BY_TRIMMING = [" =1+1", "\t=1+1", "\r=3+3"]
PLAIN_NUMBER = re.compile(r"[+-]?(\d+([.,]\d+)*[.,]?|[.,]\d+)([eE][+-]?\d+)?")


@pytest.fixture
async def rig(redis_url: str, key_prefix: str, tmp_path: Path) -> Rig:
    async with pipeline_worker(redis_url, key_prefix, tmp_path) as rig:
        yield rig


def runs_as_formula(cell: str) -> bool:
    """How a spreadsheet reads a cell: a leading = + - @ tab or CR makes it a formula,
    unless the cell is a plain number."""
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not PLAIN_NUMBER.fullmatch(cell)


def cells(data: bytes) -> list[str]:
    return [c for row in csv.reader(io.StringIO(data.decode(), newline="")) for c in row]


def formula_catalog() -> bytes:
    rows = [["sku", "title", "price", FORMULAS[0]]]
    for i, value in enumerate(FORMULAS + ARMED_BY_TRIMMING):
        rows.append([f"S{i}", value, "-1" if i == 0 else "10,00", value])
    rows.append(["S9", "Camiseta", "-3,5", "-2"])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


async def test_no_csv_output_holds_a_live_formula(rig: Rig) -> None:
    uri = await rig.upload(formula_catalog(), "catalog.csv")
    done = await rig.run("validate_csv", {"input_uri": uri, "ruleset": "amazon", "auto_fix": True})
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await rig.runner.result(done.id)
    assert result["ruleset"] == "amazon"
    assert result["errors_by_code"]["formula"] == len(FORMULAS + ARMED_BY_TRIMMING)
    refs = ("report_ref", "corrected_ref", "changelog_ref")
    outputs = {k: await rig.runner.blobs.get_bytes(result[k]) for k in refs}
    for name, data in outputs.items():
        assert not [c for c in cells(data) if runs_as_formula(c)], name
    corrected = list(csv.reader(io.StringIO(outputs["corrected_ref"].decode())))
    assert corrected[0][3] == "'" + FORMULAS[0]  # a header is a cell too
    titles = [row[1] for row in corrected[1:]]
    assert titles[:4] == ["'" + f for f in FORMULAS]
    # trimming would have armed these: auto-fix leaves them as they were (then neutralised)
    assert titles[4:7] == ["' =1+1", "'\t=1+1", "'\r=3+3"]
    assert titles[7] == "Camiseta"
    assert [row[2] for row in corrected[1:]][-1] == "-3.5"  # a negative number stays a number
    count = [{"column": "*", "agg": "count"}]
    spec = {"input_uri": uri, "group_by": ["title"], "format": "csv", "metrics": count}
    report = await rig.run("generate_report", spec)
    data = await rig.runner.blobs.get_bytes((await rig.runner.result(report.id))["report_ref"])
    assert "'=HYPERLINK" in data.decode()
    assert not [c for c in cells(data) if runs_as_formula(c)]


async def test_the_formula_guard_can_be_turned_off(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    async with pipeline_worker(redis_url, key_prefix, tmp_path, csv_formula_guard=False) as rig:
        uri = await rig.upload(formula_catalog(), "catalog.csv")
        done = await rig.run("correct_csv", {"input_uri": uri, "ruleset": "amazon"})
        fixed = await rig.runner.blobs.get_bytes(
            (await rig.runner.result(done.id))["corrected_ref"]
        )
    titles = [row[1] for row in csv.reader(io.StringIO(fixed.decode()))][1:]
    assert titles[:4] == FORMULAS
    assert titles[4:7] == ARMED_BY_TRIMMING  # still never armed by the fix itself


@pytest.mark.parametrize(
    ("params", "ran"),
    [
        ({}, "default"),
        ({"ruleset": "mercado_livre"}, "mercado_livre"),
        ({"marketplace": "mercado_livre"}, "mercado_livre"),
        ({"ruleset": "shopee", "marketplace": "shopee"}, "shopee"),
    ],
)
async def test_one_param_picks_the_rules(rig: Rig, params: dict[str, str], ran: str) -> None:
    uri = await rig.upload(b"sku,title,price\nA,Shirt,10\n", "c.csv")
    done = await rig.run("validate_csv", {"input_uri": uri, **params})
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (await rig.runner.result(done.id))["ruleset"] == ran


async def test_ruleset_and_marketplace_that_disagree_are_refused_at_enqueue(rig: Rig) -> None:
    params = {"input_uri": "upload://x/c.csv", "ruleset": "default", "marketplace": "amazon"}
    with pytest.raises(InvalidParamsError, match="disagree"):
        await rig.runner.enqueue("validate_csv", params)
    uri = await rig.upload(b"a\n1\n", "c.csv")
    unknown = await rig.run("correct_csv", {"input_uri": uri, "marketplace": "ebay"})
    assert unknown.error is not None and unknown.error.code == "unknown_ruleset"


DECIMAL_COMMA = (
    "sku;região;preço;estoque\nA;norte;1.234,56;10\nB;sul;12,5;3\nC;norte;abc;1\nD;sul;7,50;x\n"
)


async def test_report_over_a_decimal_comma_catalog(rig: Rig) -> None:
    uri = await rig.upload(DECIMAL_COMMA.encode("cp1252"), "catalogo.csv")
    sums = [{"column": "preço", "agg": "sum"}, {"column": "estoque", "agg": "sum"}]
    spec = {"input_uri": uri, "group_by": ["região"], "metrics": sums}
    done = await rig.run("generate_report", spec)
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await rig.runner.result(done.id)
    assert result["unparsed_values"] == {"preço": 1, "estoque": 1}
    rows = await rig.runner.blobs.get_bytes(result["report_ref"])
    assert '"preço_sum":1234.56' in rows.decode() and '"estoque_sum":11' in rows.decode()
    strict = await rig.run("generate_report", {**spec, "strict": True})
    assert strict.status is JobStatus.FAILED and strict.error is not None
    assert strict.error.code == "report_bad_value" and strict.attempts == 1
    assert "row 5" in strict.error.message and "'x'" in strict.error.message
    assert "infer_schema_length" not in strict.error.message


def broken_trailer_pdf() -> bytes:
    """A PDF whose trailer lost its /Root: pdfium refuses it, pypdf finds the catalog."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for n in (1, 2):
        pdf.add_page()
        pdf.cell(text=f"Recovered page {n}")
    return re.sub(rb"/Root \d+ 0 R", b"", bytes(pdf.output()))


async def test_a_pdf_pdfium_refuses_is_read_by_pypdf(rig: Rig) -> None:
    uri = await rig.upload(broken_trailer_pdf(), "broken.pdf")
    done = await rig.run("process_pdf", {"input_uri": uri})
    assert done.status is JobStatus.SUCCEEDED, done.error
    result = await rig.runner.result(done.id)
    assert (result["reader"], result["pages"]) == ("pypdf", 2)
    lines = (await rig.runner.blobs.get_bytes(result["pages_ref"])).decode().splitlines()
    assert '"text": "Recovered page 2"' in lines[1]
    garbage = await rig.upload(b"%PDF-1.7\n" + b"\x00garbage" * 100, "garbage.pdf")
    failed = await rig.run("process_pdf", {"input_uri": garbage})
    assert failed.error is not None and failed.error.code == "pdf_corrupt"
    assert "neither pdfium nor pypdf" in failed.error.message
