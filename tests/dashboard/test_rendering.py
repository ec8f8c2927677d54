"""The pure pieces of rendering: durations and times for people, escaped JSON, and the
server-drawn chart (well-formed SVG, one bar a minute, nothing executable)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from jobrunner.dashboard.charts import MinutePoint, throughput_chart
from jobrunner.dashboard.state import ago, pretty_json, seconds

NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def test_durations_for_people() -> None:
    assert [seconds(v) for v in (None, 0.85, 4.5, 42, 240, 7200, 172800)] == [
        "—", "850 ms", "4.5 s", "42 s", "4 min", "2 h", "2 d",
    ]  # fmt: skip


def test_times_relative_to_now() -> None:
    assert ago(NOW - timedelta(seconds=3), NOW) == "3.0 s ago"
    assert ago(NOW + timedelta(minutes=5), NOW) == "in 5 min"
    assert ago((NOW - timedelta(hours=2)).timestamp() * 1000, NOW) == "2 h ago"
    assert ago(None, NOW) == "—"


def test_json_is_indented_and_escaped() -> None:
    text = str(pretty_json({"b": "<script>x</script>", "a": [1, 2]}))
    assert text.startswith("{\n  &#34;a&#34;: [") and "&lt;script&gt;" in text
    assert "<script>" not in text


def test_the_chart_is_well_formed_svg_with_a_bar_a_minute() -> None:
    points = [
        MinutePoint(f"12:{m:02d}", m * 3, 0.2 + m / 100 if m % 3 else None, 1.5 if m % 3 else None)
        for m in range(15)
    ]
    svg = str(throughput_chart(points))
    root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 15 and float(bars[0].get("height", "x")) == 0
    assert float(bars[-1].get("height", "0")) == max(float(b.get("height", "0")) for b in bars)
    lines = {p.get("class"): p.get("points", "").split() for p in root.findall(f"{SVG}polyline")}
    assert len(lines["p50"]) == len(lines["p95"]) == 10  # minutes without runs have no point
    assert ">50</text>" in svg  # the left scale: 42 jobs at most, rounded up to 50
    assert "script" not in svg and "style=" not in svg and len(svg) < 8000
    assert str(throughput_chart([])) == ""


def test_chart_labels_are_escaped() -> None:
    svg = str(throughput_chart([MinutePoint("<b>", 1, None, None)]))
    assert "&lt;b&gt;" in svg and "<b>" not in svg
