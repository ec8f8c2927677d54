"""Progress from a running task to its record and watchers, throttled to stay cheap."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from jobrunner.context import ProgressThrottle
from jobrunner.domain.models import AuditEntry, JobEvent
from jobrunner.domain.status import JobStatus
from jobrunner.store.events import event_json
from jobrunner.store.jobs import JobStore


class ProgressReporter:
    """Writes at most one update per interval (plus each 25% milestone, kept in the audit)."""

    def __init__(self, store: JobStore, job_id: str, interval: float, attempt: int) -> None:
        self.store = store
        self.job_id = job_id
        self.attempt = attempt  # carried by the events and milestones, as status events are
        self.throttle = ProgressThrottle(interval)
        self.last_percent: float | None = None
        self.last_message: str | None = None

    async def report(self, percent: float, message: str | None) -> None:
        self.last_percent = percent
        if message is not None:
            self.last_message = message
        write, milestone = self.throttle.offer(percent, message)
        if not write:
            return
        now = datetime.now(tz=UTC)
        audit = None
        if milestone is not None:
            audit = AuditEntry(
                at=now, event="progress", progress=percent, message=message, attempt=self.attempt
            )
        event = JobEvent(
            job_id=self.job_id,
            kind="progress",
            status=JobStatus.RUNNING,
            progress=percent,
            message=self.last_message,
            attempt=self.attempt,
            at=now,
        )
        await self.store.set_progress(
            self.job_id, percent, message, time.time() * 1000, audit, event_json(event)
        )

    def last_fields(self) -> dict[str, Any]:
        """The latest values, so a final status write also flushes throttled progress."""
        fields: dict[str, Any] = {}
        if self.last_percent is not None:
            fields["progress"] = self.last_percent
        if self.last_message is not None:
            fields["message"] = self.last_message
        return fields
