"""Text for people (cli/show.py): pure functions, checked as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobrunner.cli import show
from jobrunner.cli.catalog import params_line
from jobrunner.domain.models import AuditEntry, JobError, JobRecord
from jobrunner.domain.status import JobStatus
from jobrunner.tasks.demo import EchoParams, SleepParams
from jobrunner.tasks.pipeline_params import ValidateParams

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0004, "0ms"), (0.25, "250ms"), (2.54, "2.5s"), (12.9, "12s"), (303, "5m 03s"),
     (7800, "2h 10m"), (273600, "3d 4h")],
)  # fmt: skip
def test_span(seconds: float, text: str) -> None:
    assert show.span(seconds) == text


def test_ago_and_size() -> None:
    assert show.ago(NOW - timedelta(seconds=90), NOW) == "1m 30s ago"
    assert show.ago(NOW + timedelta(minutes=5), NOW) == "in 5m 00s"
    assert show.ago(NOW, NOW) == "just now"
    assert show.ago(None, NOW) == "-"
    assert [show.size(n) for n in (812, 1234, 3_400_000, 5 * 10**12)] == [
        "812 B", "1.2 kB", "3.4 MB", "5.0 TB"
    ]  # fmt: skip


def test_table_aligns_columns() -> None:
    assert show.table(["ID", "TASK"], [["ab", "demo.echo"], ["abcdef", "x"]]) == [
        "ID      TASK",
        "ab      demo.echo",
        "abcdef  x",
    ]


def _record(**fields: object) -> JobRecord:
    base: dict[str, object] = {
        "id": "0123456789abcdef0123456789abcdef", "task": "demo.sleep", "params": {},
        "status": JobStatus.SUCCEEDED, "queue": "q", "plan": "pro", "tenant": "acme",
        "timeout_seconds": 30, "attempts": 2, "max_tries": 3,
        "created_at": NOW - timedelta(minutes=2), "scheduled_at": NOW - timedelta(minutes=2),
        "started_at": NOW - timedelta(seconds=70), "finished_at": NOW - timedelta(seconds=65),
        "worker_id": "host-1-abc", "progress": 100.0,
    }  # fmt: skip
    return JobRecord.model_validate({**base, **fields})


def test_outcome_and_summary() -> None:
    assert show.outcome(_record()) == "job 01234567 succeeded in 5.0s"
    error = JobError(type="PermanentError", code="bad_input", message="no header")
    failed = _record(status=JobStatus.FAILED, error=error)
    assert show.outcome(failed) == "job 01234567 failed [bad_input]: no header"
    assert show.outcome(_record(status=JobStatus.CANCELLED)) == "job 01234567 cancelled"
    lines = show.summary(failed, NOW)
    assert lines == [
        "job 0123456789abcdef0123456789abcdef  demo.sleep  failed",
        "  tenant acme · plan pro · priority 0 · attempt 2 of 3 · worker host-1-abc",
        "  created 2m 00s ago · started 1m 10s ago · finished 1m 05s ago, ran 5.0s",
        "  error [bad_input]: no header",
    ]
    waiting = show.summary(
        _record(status=JobStatus.QUEUED, started_at=None, finished_at=None, worker_id=None,
                progress=0.0, attempts=0, scheduled_at=NOW + timedelta(minutes=5)),
        NOW,
    )  # fmt: skip
    assert waiting[2] == "  created 2m 00s ago · scheduled in 5m 00s"
    assert waiting[3] == "  progress 0%"


def test_timeline() -> None:
    at = NOW.astimezone()
    audit = [
        AuditEntry(at=at, event="enqueued", status=JobStatus.QUEUED),
        AuditEntry(at=at + timedelta(seconds=0.2), event="started", attempt=1, worker_id="w1"),
        AuditEntry(
            at=at + timedelta(seconds=3),
            event="attempt_failed",
            attempt=1,
            error=JobError(type="T", code="flaky", message="boom"),
            message="retrying in 0.5s",
        ),
    ]
    clock = at.strftime("%H:%M:%S")
    assert show.timeline(audit) == [
        f"{clock}.000  +0ms    enqueued",
        f"{clock}.200  +200ms  started         attempt 1  on w1",
        f"{(at + timedelta(seconds=3)).strftime('%H:%M:%S')}.000  +3.0s   attempt_failed  "
        "attempt 1  [flaky] boom  retrying in 0.5s",
    ]


def test_params_line() -> None:
    assert params_line(SleepParams.model_json_schema()) == "seconds=1.0, steps=10"
    assert params_line(EchoParams.model_json_schema()) == "any other field"
    assert params_line(ValidateParams.model_json_schema()) == (
        "input_uri (required), ruleset, marketplace, category, delimiter, encoding, auto_fix=false"
    )


def test_names_fit_a_short_column() -> None:
    assert show.names(["demo.echo", "demo.sleep"]) == "demo.echo,demo.sleep"
    many = [f"task.number_{i}" for i in range(6)]
    assert show.names(many, width=30) == "task.number_0,task.number_1 +4"
    assert show.names([]) == "-" and show.names(None) == "?"
