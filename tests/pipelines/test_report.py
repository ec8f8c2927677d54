"""build_report and count_rows on small generated tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from jobrunner.errors import PermanentError
from jobrunner.pipelines.report import ReportSpec, build_report
from jobrunner.pipelines.rows import ROW, count_rows, open_table

SALES = pl.DataFrame(
    {
        "region": ["north", "south", "north", "east", "south", "north"],
        "product": ["a", "a", "b", "b", "c", None],
        "units": [10, 5, 7, 3, 8, 1],
        "price": [2.0, 2.0, 3.5, 3.5, 1.0, 9.0],
    }
)


@pytest.fixture(params=["csv", "parquet", "ndjson"])
def sales_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"sales.{request.param}"
    getattr(SALES, f"write_{request.param}")(path)
    return path


def _spec(**fields: Any) -> ReportSpec:
    return ReportSpec.model_validate(fields)


def test_group_by_with_metrics_each_input_format(sales_file: Path, tmp_path: Path) -> None:
    spec = _spec(
        group_by=["region"],
        metrics=[
            {"column": "units", "agg": "sum", "as": "total"},
            {"column": "price", "agg": "mean"},
            {"column": "product", "agg": "n_unique"},
            {"column": "*", "agg": "count"},
        ],
    )
    out = tmp_path / "out.json"
    result = build_report(sales_file, spec, out)
    assert result.rows == 3
    assert result.columns == ["region", "total", "price_mean", "product_n_unique", "count"]
    rows = json.loads(out.read_text())
    assert [r["region"] for r in rows] == ["east", "north", "south"]
    assert rows[1] == {
        "region": "north",
        "total": 18,
        "price_mean": pytest.approx(14.5 / 3),
        "product_n_unique": 3,
        "count": 3,
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_output_formats_are_written(fmt: str, tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    SALES.write_csv(source)
    out = tmp_path / f"out.{fmt}"
    spec = _spec(group_by=["product"], metrics=[{"column": "units", "agg": "max"}], format=fmt)
    result = build_report(source, spec, out)
    written = pl.read_csv(out) if fmt == "csv" else pl.read_parquet(out)
    assert result.rows == written.height == 4
    assert written.columns == result.columns == ["product", "units_max"]


@pytest.mark.parametrize(
    ("flt", "regions"),
    [
        ({"column": "units", "op": "gt", "value": 5}, ["north", "north", "south"]),
        ({"column": "units", "op": "le", "value": 3}, ["east", "north"]),
        ({"column": "region", "op": "eq", "value": "south"}, ["south", "south"]),
        ({"column": "region", "op": "ne", "value": "north"}, ["east", "south", "south"]),
        ({"column": "product", "op": "in", "value": ["b", "c"]}, ["east", "north", "south"]),
        ({"column": "product", "op": "not_in", "value": ["a"]}, ["east", "north", "south"]),
        ({"column": "product", "op": "is_null"}, ["north"]),
        ({"column": "units", "op": "ge", "value": 8}, ["north", "south"]),
        ({"column": "units", "op": "lt", "value": 2}, ["north"]),
    ],
)
def test_filters(flt: dict[str, Any], regions: list[str], tmp_path: Path) -> None:
    source = tmp_path / "sales.parquet"
    SALES.write_parquet(source)
    spec = _spec(
        group_by=["region", "units"],
        metrics=[{"column": "*", "agg": "count"}],
        filters=[flt],
        format="csv",
    )
    build_report(source, spec, tmp_path / "out.csv")
    assert pl.read_csv(tmp_path / "out.csv")["region"].to_list() == regions


def test_not_null_filter_and_global_aggregate(tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    SALES.write_csv(source)
    spec = _spec(
        metrics=[{"column": "units", "agg": "sum"}, {"column": "units", "agg": "min"}],
        filters=[{"column": "product", "op": "not_null"}],
    )
    result = build_report(source, spec, tmp_path / "out.json")
    assert result.rows == 1
    assert json.loads((tmp_path / "out.json").read_text()) == [{"units_sum": 33, "units_min": 3}]


def test_explicit_sort_descending(tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    SALES.write_csv(source)
    spec = _spec(
        group_by=["region"],
        metrics=[{"column": "units", "agg": "sum", "as": "units"}],
        sort=[{"column": "units", "descending": True}],
    )
    build_report(source, spec, tmp_path / "out.json")
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [r["units"] for r in rows] == [18, 13, 3]
    ascending = _spec(
        group_by=["region"], metrics=[{"column": "units", "agg": "sum"}], sort=["units_sum"]
    )
    build_report(source, ascending, tmp_path / "asc.json")
    rows = json.loads((tmp_path / "asc.json").read_text())
    assert [r["units_sum"] for r in rows] == [3, 13, 18]


INPUT_COLUMNS = "available: region, product, units, price"


@pytest.mark.parametrize(
    ("fields", "listed"),
    [
        ({"group_by": ["regoin"], "metrics": [{"column": "units", "agg": "sum"}]}, INPUT_COLUMNS),
        ({"metrics": [{"column": "unit", "agg": "sum"}]}, INPUT_COLUMNS),
        (
            {
                "metrics": [{"column": "units", "agg": "sum"}],
                "filters": [{"column": "colour", "op": "is_null"}],
            },
            INPUT_COLUMNS,
        ),
        # sort names output columns, so those are the ones listed
        (
            {"metrics": [{"column": "units", "agg": "sum"}], "sort": ["units"]},
            "available: units_sum",
        ),
    ],
)
def test_unknown_column_names_it_and_lists_available(
    fields: dict[str, Any], listed: str, tmp_path: Path
) -> None:
    source = tmp_path / "sales.csv"
    SALES.write_csv(source)
    with pytest.raises(PermanentError) as info:
        build_report(source, _spec(**fields), tmp_path / "out.json")
    err = info.value
    assert err.code == "report_unknown_column"
    assert f"unknown column {err.details['column']!r}" in str(err)
    assert str(err).endswith(listed)
    assert not (tmp_path / "out.json").exists()


def test_filter_value_of_wrong_type_is_a_permanent_error(tmp_path: Path) -> None:
    source = tmp_path / "sales.csv"
    SALES.write_csv(source)
    spec = _spec(
        metrics=[{"column": "units", "agg": "sum"}],
        filters=[{"column": "region", "op": "gt", "value": 3}],
    )
    with pytest.raises(PermanentError) as info:
        build_report(source, spec, tmp_path / "out.json")
    assert info.value.code == "report_query_failed"


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": []},
        {"metrics": [{"column": "units", "agg": "median"}]},
        {"metrics": [{"column": "units", "agg": "sum"}], "format": "xlsx"},
        {
            "metrics": [{"column": "units", "agg": "sum"}],
            "filters": [{"column": "units", "op": "in", "value": 3}],
        },
        {
            "metrics": [{"column": "units", "agg": "sum"}],
            "filters": [{"column": "units", "op": "gt"}],
        },
        {"metrics": [{"column": "units", "agg": "sum"}, {"column": "units", "agg": "sum"}]},
        {"metrics": [{"column": "*", "agg": "sum"}]},
        {"metrics": [{"column": "units", "agg": "sum"}], "colour": "red"},
    ],
)
def test_spec_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ReportSpec.model_validate(fields)


def test_input_errors(tmp_path: Path) -> None:
    spec = _spec(metrics=[{"column": "*", "agg": "count"}])
    with pytest.raises(PermanentError) as missing:
        build_report(tmp_path / "nope.csv", spec, tmp_path / "out.json")
    assert missing.value.code == "input_not_found"
    odd = tmp_path / "data.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(PermanentError) as unknown:
        build_report(odd, spec, tmp_path / "out.json")
    assert unknown.value.code == "input_format_unknown"
    as_csv = _spec(metrics=[{"column": "*", "agg": "count"}], input_format="csv")
    odd.write_text("a,b\n1,2\n")
    assert build_report(odd, as_csv, tmp_path / "out.json").rows == 1


def test_json_array_input_is_scanned(tmp_path: Path) -> None:
    source = tmp_path / "sales.json"
    SALES.write_json(source)
    assert open_table(source, None, tmp_path).frame.drop(ROW).collect().equals(SALES)


@pytest.mark.parametrize(
    ("name", "body", "fmt", "rows"),
    [
        ("a.csv", "x,y\n1,2\n3,4\n5,6\n", "csv", 3),
        ("header-only.csv", "x,y\n", "csv", 0),
        ("empty.csv", "", "csv", 0),
        ("a.json", '[{"x": 1}, {"x": 2}]', "json", 2),
        ("b.json", '  \n[\n{"x": 1}\n]', "json", 1),
        ("c.json", '{"x": 1}\n{"x": 2}\n{"x": 3}\n', "json", 3),
        ("d.json", "[]", "json", 0),
    ],
)
def test_count_rows(name: str, body: str, fmt: Any, rows: int, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(body)
    assert count_rows(path, fmt) == rows


def test_count_rows_unreadable_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[{not json")
    with pytest.raises(PermanentError) as info:
        count_rows(path, "json")
    assert info.value.code == "input_unreadable"
