"""Five-field cron expressions ('0 2 * * *') as the sets arq's ``cron()`` takes.

Fields: minute, hour, day of month, month, day of week (0 or 7 = Sunday). Each is ``*``, a
number, a range ``a-b``, any of those with a step ``/n``, or a comma list of them. arq matches
every field at once, so an expression restricting both the day of month and the day of week is
refused (classic cron would take either).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CronSchedule", "parse_cron"]

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


@dataclass(frozen=True)
class CronSchedule:
    """What arq's ``cron()`` takes; None is "every" (arq's own default for a field)."""

    minute: frozenset[int] | None
    hour: frozenset[int] | None
    day: frozenset[int] | None
    month: frozenset[int] | None
    weekday: frozenset[int] | None  # Monday = 0, as arq (and datetime.weekday) count

    def arq_kwargs(self) -> dict[str, set[int]]:
        """Only the restricted fields, as sets; ``second`` is always 0."""
        fields = {
            "minute": self.minute,
            "hour": self.hour,
            "day": self.day,
            "month": self.month,
            "weekday": self.weekday,
        }
        chosen = {name: set(values) for name, values in fields.items() if values is not None}
        return {**chosen, "second": {0}}


def _part(text: str, low: int, high: int) -> set[int]:
    base, _, step_text = text.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"step {step_text!r} must be at least 1")
    if base == "*":
        start, stop = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, stop = int(first), int(last)
    else:
        start = int(base)
        stop = high if step_text else start
    if not low <= start <= stop <= high:
        raise ValueError(f"{text!r} is outside {low}-{high}")
    return set(range(start, stop + 1, step))


def _field(text: str, low: int, high: int) -> frozenset[int] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        try:
            values |= _part(part, low, high)
        except ValueError as exc:
            raise ValueError(f"cron field {text!r}: {exc}") from None
    return frozenset(values)


def parse_cron(expression: str) -> CronSchedule:
    """The schedule of a five-field cron expression; ValueError says what is wrong."""
    parts = expression.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(f"cron {expression!r}: want 5 fields (minute hour day month weekday)")
    parsed = [_field(text, low, high) for text, (_, low, high) in zip(parts, _FIELDS, strict=True)]
    minute, hour, day, month, weekday = parsed
    if day is not None and weekday is not None:
        raise ValueError(f"cron {expression!r}: restrict the day of month or of week, not both")
    if weekday is not None:  # cron: 0 and 7 are Sunday; arq: Monday is 0, Sunday 6
        weekday = frozenset((value + 6) % 7 for value in weekday)
    return CronSchedule(minute, hour, day, month, weekday)
