"""Pure helpers behind the PDF pipeline: dates, chunk boundaries, newline clean-up."""

from __future__ import annotations

import pytest

from jobrunner.pipelines.pdf_text import chunk_spans, normalise_text, pdf_date


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("D:20220403193102+02'00'", "2022-04-03T19:31:02+02:00"),
        ("D:20220403193102-05'30'", "2022-04-03T19:31:02-05:30"),
        ("D:20220403193102Z", "2022-04-03T19:31:02+00:00"),
        ("D:2022", "2022-01-01T00:00:00"),
        ("not a date", "not a date"),
        ("D:20221399", "D:20221399"),
        ("", None),
        (None, None),
    ],
)
def test_pdf_date(raw: str | None, iso: str | None) -> None:
    assert pdf_date(raw) == iso


def test_chunks_break_at_words_and_skip_blank_runs() -> None:
    text = "hello world this is a test.\n\nNew para here and more words"
    spans = chunk_spans(text, 12)
    assert [text[a:b] for a, b in spans] == [
        "hello world",
        "this is a",
        "test.",
        "New para",
        "here and",
        "more words",
    ]


def test_chunks_hard_cut_without_spaces() -> None:
    assert chunk_spans("abcdefghij", 3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert chunk_spans("   \n ", 5) == []


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunk_spans("abc", 0)


def test_normalise_text() -> None:
    assert normalise_text("a\r\nb\rc\x00d") == "a\nb\ncd"


def test_normalise_text_drops_noncharacter_and_keeps_astral() -> None:
    assert normalise_text("taki\ufffemata \U0001f42d\r\n") == "takimata \U0001f42d\n"
    assert normalise_text("plain") == "plain"
