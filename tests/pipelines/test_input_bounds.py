"""Input bounds and compressed inputs, in the pure pipeline code (no worker)."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path

import polars as pl
import pytest
import zstandard
from fpdf import FPDF

from jobrunner.errors import PermanentError
from jobrunner.pipelines.compressed import decompressed
from jobrunner.pipelines.formulas import formula_like, is_formula_like, needs_guard, safe_cell
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf import extract_pdf
from jobrunner.pipelines.validation.bounds import check_lines
from jobrunner.pipelines.validation.rules import load_ruleset
from jobrunner.pipelines.validation.run import validate_csv_file

CSV = b"sku;title;price\nA;Shirt;10,50\nB;Hat;-1\n"


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "packed"),
    [
        ("in.csv.gz", gzip.compress(CSV)),
        ("in.csv.zst", zstandard.ZstdCompressor().compress(CSV)),
        ("in.zip", _zip({"catalog.csv": CSV})),
        ("no-suffix", gzip.compress(CSV)),  # told by content, not by name
    ],
)
def test_compressed_catalogs_are_validated(name: str, packed: bytes, tmp_path: Path) -> None:
    source = tmp_path / name
    source.write_bytes(packed)
    result = validate_csv_file(
        source, ruleset=load_ruleset("default"), report_path=tmp_path / "r.csv"
    )
    assert (result.total_rows, result.invalid_rows, result.delimiter) == (2, 1, ";")


@pytest.mark.parametrize(
    ("packed", "code"),
    [
        (gzip.compress(b"x" * 5000), "input_too_large"),
        (zstandard.ZstdCompressor().compress(b"x" * 5000), "input_too_large"),
        (_zip({"a.csv": b"x" * 5000}), "input_too_large"),
        (_zip({"a.csv": CSV, "b.csv": CSV}), "input_unreadable"),
        (gzip.compress(gzip.compress(CSV)), "input_unreadable"),
        (gzip.compress(CSV)[:20], "input_unreadable"),
    ],
)
def test_compressed_inputs_over_the_cap_or_broken(packed: bytes, code: str, tmp_path: Path) -> None:
    source = tmp_path / "in.gz"
    source.write_bytes(packed)
    with pytest.raises(PermanentError) as info:
        decompressed(source, tmp_path, max_bytes=4096)
    assert info.value.code == code
    assert [p.name for p in tmp_path.iterdir()] == ["in.gz"]  # no partial file left


def test_line_bound_is_exact_and_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    for length, fails in [(1024, False), (1025, True), (4000, True)]:
        path.write_bytes(b"a,b\n" * 300 + b"x" * length + b"\n" + b"a,b\n" * 300)
        if not fails:
            check_lines(path, 1024)
            continue
        with pytest.raises(PermanentError) as info:
            check_lines(path, 1024)
        assert (info.value.code, info.value.details["row"]) == ("line_too_long", 301)
    path.write_bytes(b"x" * 3000)  # one line, no break at all
    with pytest.raises(PermanentError, match="line 1 "):
        check_lines(path, 1024)


def test_header_bounds_apply_before_polars_reads(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(30_000)) + "\n" + "1," * 29_999 + "1\n")
    limits = InputLimits(max_columns=2000, max_line_bytes=1024 * 1024)
    with pytest.raises(PermanentError) as info:
        validate_csv_file(
            wide, ruleset=load_ruleset("default"), report_path=tmp_path / "r.csv", limits=limits
        )
    assert (info.value.code, info.value.details["columns"]) == ("too_many_columns", 30_000)


@pytest.mark.parametrize(
    ("text", "like", "guarded"),
    [
        ("=1+1", True, True), ("+SUM(A1)", True, True), ("-x", True, True), ("@A1", True, True),
        (" =1", True, True), ("\t=1", True, True), ("\r=3+3", True, True), ("\n@x", True, True),
        ("\tplain", False, True), ("\r", False, True), ("-12,5", False, False),
        ("+3", False, False), ("-1e-3", False, False), ("-", True, True), ("a=1", False, False),
        ("\u00a0=1", False, False), ("", False, False), ("'=1", False, False),
    ],
)  # fmt: skip
def test_what_counts_as_a_formula(text: str, like: bool, guarded: bool) -> None:
    frame = pl.DataFrame({"v": [text]}).select(
        like=formula_like(pl.col("v")), guard=needs_guard(pl.col("v"))
    )
    assert frame.row(0) == (like, guarded)
    assert is_formula_like(text) is like
    assert (safe_cell(text) == "'" + text) is guarded


def _flate_bomb_pdf(path: Path, inflated: int) -> None:
    """A valid PDF plus an unreferenced content-like Flate stream inflating to ``inflated``."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.cell(text="hello")
    body = bytes(pdf.output())
    packer = zlib.compressobj(9)
    stream = b"".join(packer.compress(b" " * (1 << 20)) for _ in range(inflated >> 20))
    stream += packer.flush()
    bomb = b"99 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
    cut = body.rfind(b"xref")
    path.write_bytes(body[:cut] + bomb + stream + b"\nendstream\nendobj\n" + body[cut:])


def test_pdf_stream_that_inflates_past_the_bound(tmp_path: Path) -> None:
    source = tmp_path / "bomb.pdf"
    _flate_bomb_pdf(source, 64 << 20)
    out = {"pages_out": tmp_path / "p.jsonl", "chunks_out": tmp_path / "c.jsonl"}
    limits = InputLimits(pdf_max_stream_bytes=8 << 20)
    with pytest.raises(PermanentError) as info:
        extract_pdf(source, password=None, max_pages=None, limits=limits, **out)
    assert info.value.code == "input_too_large"
    roomy = InputLimits(pdf_max_stream_bytes=128 << 20)
    assert extract_pdf(source, password=None, max_pages=None, limits=roomy, **out).pages == 1
