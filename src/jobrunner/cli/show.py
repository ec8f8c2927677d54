"""Text for people: short ids, relative times, tables, a job's summary and its timeline.

Pure functions of their arguments (``now`` is passed in), so the output is tested as text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobrunner.domain.models import AuditEntry, JobRecord

SHORT = 8  # characters of a job id shown, and the shortest prefix commands accept


def short(job_id: str) -> str:
    return job_id[:SHORT]


def span(seconds: float) -> str:
    """3ms, 2.5s, 12s, 5m 03s, 2h 10m, 3d 4h."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def size(count: int) -> str:
    """Bytes for people: 812 B, 1.2 kB, 3.4 MB."""
    if count < 1000:
        return f"{count} B"
    value, unit = count / 1000, "kB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = (now - when).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{span(seconds)} ago" if seconds > 0 else f"in {span(-seconds)}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; trailing spaces trimmed."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    ]


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def outcome(record: JobRecord) -> str:
    """One line: how a job ended (or where it is)."""
    status = record.status.value
    if record.error is not None and status in ("failed", "retrying"):
        error = record.error
        return f"job {short(record.id)} {status} [{error.code}]: {error.message}"
    took = _took(record) if status == "succeeded" else ""
    return f"job {short(record.id)} {status}{f' in {took}' if took else ''}"


def _took(record: JobRecord) -> str:
    if record.started_at is None or record.finished_at is None:
        return ""
    return span((record.finished_at - record.started_at).total_seconds())


def jobs_table(items: Sequence[JobRecord], now: datetime, *, tenants: bool) -> list[str]:
    headers = ["ID", "TASK", "STATUS", "PROGRESS", "CREATED", "TOOK"]
    headers += ["TENANT"] if tenants else []
    rows = [
        [
            short(j.id),
            j.task,
            j.status.value + (" (cancelling)" if j.cancel_requested and not j.is_terminal else ""),
            f"{j.progress:.0f}%",
            ago(j.created_at, now),
            _took(j) or "-",
            *([j.tenant] if tenants else []),
        ]
        for j in items
    ]
    return table(headers, rows)


def names(items: Sequence[str] | None, width: int = 40) -> str:
    """Names comma-joined within about ``width`` characters, the rest counted: 'a,b +3'."""
    if items is None:
        return "?"  # a worker too old to advertise its tasks
    shown: list[str] = []
    for i, name in enumerate(items):
        if shown and len(",".join([*shown, name])) > width:
            return f"{','.join(shown)} +{len(items) - i}"
        shown.append(name)
    return ",".join(shown) or "-"


def workers_table(workers: Sequence[dict[str, Any]], now: datetime) -> list[str]:
    headers = ["WORKER", "QUEUES", "RUNNING", "DONE", "FAILED", "SEEN", "TASKS"]
    rows = [
        [
            str(w.get("id", "?")),
            ",".join(w.get("queues", [])),
            f"{w.get('jobs_running', 0)}/{w.get('concurrency', '?')}",
            str(w.get("jobs_complete", 0)),
            str(w.get("jobs_failed", 0)),
            ago(_from_ms(w.get("last_seen_ms")), now),
            names(w.get("tasks")),
        ]
        for w in workers
    ]
    return table(headers, rows)


def queues_table(stats: Sequence[dict[str, Any]]) -> list[str]:
    headers = ["PLAN", "QUEUED", "RUNNING", "DEFERRED", "WORKERS"]
    keys = ["plan", "queued", "running", "deferred", "workers"]
    return table(headers, [[str(q.get(k, "")) for k in keys] for q in stats])


def keys_table(keys: Sequence[dict[str, Any]]) -> list[str]:
    """API keys as listed (never the key itself); limits are those in force."""
    headers = ["KEY", "TENANT", "PLAN", "JOBS/MONTH", "REQUESTS/S", "CREATED"]
    rows = [
        [
            str(k["key_id"]),
            str(k["tenant"]),
            str(k["plan"]),
            "-" if k.get("monthly_quota") is None else str(k["monthly_quota"]),
            "-" if k.get("rate_limit_per_s") is None else f"{k['rate_limit_per_s']:g}",
            str(k.get("created_at", ""))[:19].replace("T", " "),
        ]
        for k in keys
    ]
    return table(headers, rows)


def _from_ms(ms: Any) -> datetime | None:
    if not isinstance(ms, int | float):
        return None
    return datetime.fromtimestamp(ms / 1000).astimezone()


def summary(record: JobRecord, now: datetime) -> list[str]:
    """The record as a few lines: identity, where it runs, when, how far, why it failed."""
    r = record
    lines = [f"job {r.id}  {r.task}  {r.status.value}"]
    where = [f"tenant {r.tenant}", f"plan {r.plan}", f"priority {r.priority}"]
    where.append(f"attempt {r.attempts} of {r.max_tries}")
    if r.worker_id:
        where.append(f"worker {r.worker_id}")
    lines.append("  " + " · ".join(where))
    when = [f"created {ago(r.created_at, now)}"]
    if r.scheduled_at > r.created_at and r.started_at is None:
        when.append(f"scheduled {ago(r.scheduled_at, now)}")
    if r.started_at:
        when.append(f"started {ago(r.started_at, now)}")
    if r.finished_at:
        when.append(f"finished {ago(r.finished_at, now)}, ran {_took(r)}")
    if r.next_attempt_at and not r.is_terminal:
        when.append(f"next attempt {ago(r.next_attempt_at, now)}")
    lines.append("  " + " · ".join(when))
    if not r.is_terminal or r.message:
        lines.append(f"  progress {r.progress:.0f}%" + (f"  {r.message}" if r.message else ""))
    if r.cancel_requested and not r.is_terminal:
        lines.append("  cancel requested: it stops within about a second")
    if r.error:
        lines.append(f"  error [{r.error.code}]: {r.error.message}")
    if r.retry_of:
        lines.append(f"  retry of job {r.retry_of}")
    return lines


def timeline(audit: Sequence[AuditEntry]) -> list[str]:
    """The audit trail, one line per event: local time, time since the first event, what."""
    if not audit:
        return []
    start = audit[0].at
    rows = []
    for entry in audit:
        detail = []
        if entry.attempt:
            detail.append(f"attempt {entry.attempt}")
        if entry.worker_id:
            detail.append(f"on {entry.worker_id}")
        if entry.error:
            detail.append(f"[{entry.error.code}] {entry.error.message}")
        if entry.message:
            detail.append(entry.message)
        rows.append(
            [
                entry.at.astimezone().strftime("%H:%M:%S.%f")[:-3],
                "+" + span((entry.at - start).total_seconds()),
                entry.event,
                "  ".join(detail),
            ]
        )
    return table(["TIME", "", "EVENT", ""], rows)[1:]
