"""Rulesets: shipped files load, lookup by marketplace, user overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobrunner.errors import PermanentError
from jobrunner.pipelines.catalog_rules import available_rulesets, load_ruleset


def test_shipped_rulesets_load_and_inherit_default() -> None:
    assert available_rulesets(None) == ["amazon", "default", "mercado_livre", "shopee"]
    ml = load_ruleset("mercado_livre", None, None)
    assert ml.columns["title"].max_length == 60  # overrides default's 200
    assert ml.columns["title"].aliases == load_ruleset("default").columns["title"].aliases
    assert [c.left for c in ml.cross] == ["sale_price"]
    assert ml.for_category("electronics").columns["model"].required


def test_marketplace_selects_the_ruleset() -> None:
    assert load_ruleset("default", "shopee", None).name == "shopee"
    assert load_ruleset("default", None, None).name == "default"


def test_unknown_ruleset_lists_the_available_ones() -> None:
    with pytest.raises(PermanentError) as info:
        load_ruleset("default", "ebay", None)
    assert info.value.code == "unknown_ruleset"
    assert "mercado_livre" in info.value.message
    assert "ebay" in info.value.message


def test_user_dir_adds_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'marketplace = "mine"\nextends = "mercado_livre"\n[columns.title]\nmax_length = 20\n'
    )
    assert "mine" in available_rulesets(tmp_path)
    mine = load_ruleset("default", "mine", tmp_path)
    assert (mine.columns["title"].max_length, mine.columns["condition"].required) == (20, True)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text('description = "ok"\n\n[columns.title\nmax_length = 3\n')
    with pytest.raises(PermanentError) as info:
        load_ruleset("broken", None, tmp_path)
    assert info.value.code == "ruleset_invalid"
    assert "broken.toml" in info.value.message
    assert "line 3" in info.value.message


def test_schema_error_names_file_and_field_path(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[columns.price]\ntype = "money"\n')
    with pytest.raises(PermanentError) as info:
        load_ruleset("bad", None, tmp_path)
    assert info.value.code == "ruleset_invalid"
    assert "bad.toml" in info.value.message
    assert "columns.price.type" in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('[columns.t]\nregex = "(unclosed"\n', "regular expression"),
        ("[columns.t]\nmax_items = 3\n", "multiple"),
        ('[[cross]]\nleft = "a"\nop = "<"\nright = "b"\n', "cross rule column"),
        ('extends = "nope"\n', "extends"),
    ],
)
def test_inconsistent_rules_are_rejected(tmp_path: Path, body: str, fragment: str) -> None:
    (tmp_path / "odd.toml").write_text(body)
    with pytest.raises(PermanentError) as info:
        load_ruleset("odd", None, tmp_path)
    assert info.value.code == "ruleset_invalid"
    assert fragment in info.value.message
