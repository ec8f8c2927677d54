"""The overview's chart, drawn on the server as a few kB of SVG: jobs finished per minute as
bars (left scale) and the p50/p95 run time as lines (right scale). Styled by the page's CSS
(classes only: the page's Content-Security-Policy allows no inline style)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from jobrunner.dashboard.state import seconds

__all__ = ["MinutePoint", "throughput_chart"]

_W, _H = 600, 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 556, 12, 150


@dataclass(frozen=True)
class MinutePoint:
    label: str  # "12:34"
    finished: int
    p50: float | None
    p95: float | None


def _nice(peak: float) -> float:
    """A round scale top at or above ``peak`` (1, 2, 5 times a power of ten)."""
    if peak <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(peak))
    return float(next(step * power for step in (1, 2, 5, 10) if step * power >= peak))


def _y(value: float, top: float) -> float:
    return _BOTTOM - (_BOTTOM - _TOP) * min(value / top, 1.0)


def _line(points: Sequence[MinutePoint], attr: str, top: float, slot: float) -> str:
    """A polyline with a dot per minute that has a value (``attr`` is p50 or p95)."""
    xy = [
        (_LEFT + slot * (i + 0.5), _y(value, top))
        for i, p in enumerate(points)
        if (value := getattr(p, attr)) is not None
    ]
    if not xy:
        return ""
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle class="{attr}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>' for x, y in xy)
    return f'<polyline class="{attr}" points="{line}"/>{dots}'


def throughput_chart(points: Sequence[MinutePoint]) -> Markup:
    if not points:
        return Markup("")
    slot = (_RIGHT - _LEFT) / len(points)
    jobs_top = _nice(max(p.finished for p in points))
    run_top = _nice(max([p.p95 or 0.0 for p in points] + [p.p50 or 0.0 for p in points]))
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
        'aria-label="Jobs finished per minute and run time p50/p95, last 15 minutes">',
        f'<line class="axis" x1="{_LEFT}" y1="{_BOTTOM}" x2="{_RIGHT}" y2="{_BOTTOM}"/>',
        f'<text class="scale" x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{jobs_top:g}</text>',
        f'<text class="scale" x="{_LEFT - 6}" y="{_BOTTOM}" text-anchor="end">0</text>',
        f'<text class="scale p95" x="{_RIGHT + 6}" y="{_TOP + 4}">'
        f"{escape(seconds(run_top))}</text>",
    ]
    for i, p in enumerate(points):
        x, height = _LEFT + slot * i + 2, _BOTTOM - _y(p.finished, jobs_top)
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{_BOTTOM - height:.1f}" width="{slot - 4:.1f}" '
            f'height="{height:.1f}"><title>{escape(p.label)}: {p.finished} finished'
            f"{escape(_runs(p))}</title></rect>"
        )
        if i % 5 == 0 or i == len(points) - 1:
            parts.append(
                f'<text class="tick" x="{x + (slot - 4) / 2:.1f}" y="{_BOTTOM + 16}" '
                f'text-anchor="middle">{escape(p.label)}</text>'
            )
    parts.append(_line(points, "p50", run_top, slot))
    parts.append(_line(points, "p95", run_top, slot))
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(p: MinutePoint) -> str:
    if p.p50 is None or p.p95 is None:
        return ""
    return f", run time p50 {seconds(p.p50)}, p95 {seconds(p.p95)}"
