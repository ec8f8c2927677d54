"""The JSON codec of the pipeline children's messages, and the references to functions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from jobrunner.errors import WireError
from jobrunner.pipelines import rows
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf_pages import render_page
from jobrunner.pipelines.report import ReportSpec
from jobrunner.pipelines.validation.rules import available_rulesets, load_ruleset
from jobrunner.tasks.wire import (
    HEADER,
    PIPELINE_MODULES,
    dumps,
    from_wire,
    function_ref,
    loads,
    resolve,
    to_wire,
)


def crossed(value: object) -> object:
    """``value`` as the other process gets it: encoded, framed, read back, decoded."""
    frame = dumps(to_wire(value))
    (size,) = HEADER.unpack(frame[: HEADER.size])
    assert size == len(frame) - HEADER.size
    return from_wire(loads(frame[HEADER.size :]))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        2.5,
        "façade \U0001f600",
        [1, [2, "x"]],
        {"a": {"b": [None]}},
        (1, "two", (3,)),
        Path("/tmp/some where/file.csv"),
        InputLimits(max_columns=7),
        render_page(3, "Olá mundo, " * 50, 100),
        ReportSpec.model_validate(
            {"group_by": ["sku"], "metrics": [{"column": "*", "agg": "count"}], "sort": ["sku"]}
        ),
        {"__wire__": "path", "value": "a dict that only looks tagged"},
        "lone surrogate \udcff kept",
    ],
)
def test_values_cross_as_what_they_were(value: object) -> None:
    back = crossed(value)
    assert back == value and type(back) is type(value)


def test_every_builtin_ruleset_crosses_unchanged() -> None:
    for name in available_rulesets():
        ruleset = load_ruleset(name)
        assert crossed(ruleset) == ruleset


@pytest.mark.parametrize(
    "value",
    [b"bytes", {1, 2}, {1: "int key"}, pl.DataFrame({"a": [1]}), object(), [{"ok": frozenset()}]],
)
def test_a_value_with_no_codec_fails_loudly(value: object) -> None:
    with pytest.raises(WireError) as info:
        to_wire(value)
    assert info.value.code == "pipeline_value_unsupported"


def test_an_unknown_tag_fails_loudly() -> None:
    with pytest.raises(WireError, match="unknown value type 'Popen'"):
        from_wire({"__wire__": "Popen", "value": ["sh"]})


def test_functions_go_by_reference_resolved_only_in_allowed_modules() -> None:
    ref = function_ref(rows.count_rows)
    assert ref == "jobrunner.pipelines.rows:count_rows"
    assert resolve(ref, PIPELINE_MODULES) is rows.count_rows
    refused = [
        "os:system",  # not an allowed module
        "jobrunner.pipelines.rows:decompressed",  # imported there, defined elsewhere
        "jobrunner.pipelines.rows:pl",  # a module imported there
        "jobrunner.pipelines.rows:Table",  # a class, not a function
        "jobrunner.pipelines.rows:_is_blank",  # private
        "jobrunner.pipelines.rows:pl.read_csv",  # no dotted paths
        "jobrunner.pipelines.rows:missing",
        "jobrunner.pipelines.rows",
    ]
    for bad in refused:
        with pytest.raises(WireError) as info:
            resolve(bad, PIPELINE_MODULES)
        assert info.value.code == "pipeline_call_refused", bad


def test_only_module_level_functions_have_a_reference() -> None:
    def nested() -> None:
        return None

    for fn in (nested, lambda: None):
        with pytest.raises(WireError, match="not a module-level function"):
            function_ref(fn)
