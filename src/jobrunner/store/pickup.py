"""Claiming and starting due jobs of an arq queue: one Lua call per batch (lua/start.lua).

The call takes arq's lease and try counter for each job, moves its queue entry out of the
scanned range until the lease lapses, reads arq's payload and moves the record to running, and
returns only what an attempt needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from jobrunner.store.keys import Keys
from jobrunner.store.scripts import layout_args, record_script


@dataclass(frozen=True, slots=True)
class StartedRecord:
    """The part of a job record an attempt reads (not the whole record)."""

    id: str
    params_json: str
    timeout_seconds: float
    max_tries: int
    interruptions: int
    tenant: str
    task: str
    plan: str
    correlation_id: str | None
    callback_url: str | None
    priority: int
    created_ms: int  # arq's enqueue time (the payload's 'et')
    expires_ms: float | None  # the start deadline (the payload's only kwarg, when set)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job this worker now holds the lease of: ``record`` is None for a plain arq job;
    ``payload`` is arq's for a plain arq job, empty for ours (the record says the same)."""

    job_id: str
    score: int
    attempt: int
    payload: bytes
    record: StartedRecord | None


@dataclass(frozen=True, slots=True)
class ExpiredAtPickup:
    """A job found past its start deadline: the claim call expired it."""

    job_id: str
    plan: str
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class MissingAtPickup:
    """A job of a task this worker lacks: its lease is held, its record left as it was."""

    job_id: str
    score: int
    attempt: int
    task: str
    plan: str
    callback_url: str | None


@dataclass(frozen=True, slots=True)
class CorruptAtPickup:
    """A job whose record does not parse: left as it is, taken out of arq's queue."""

    job_id: str


Picked = Claimed | MissingAtPickup | ExpiredAtPickup | CorruptAtPickup


def _text(value: Any) -> str | None:
    return None if value is None else bytes(value).decode()


def _started(e: list[Any]) -> StartedRecord:
    return StartedRecord(
        id=e[0].decode(),
        params_json=_text(e[5]) or "{}",
        timeout_seconds=float(e[6]),
        max_tries=int(float(e[7] or 1)),
        interruptions=int(float(e[8])),
        tenant=e[9].decode(),
        task=e[10].decode(),
        plan=_text(e[11]) or "",
        correlation_id=_text(e[12]),
        callback_url=_text(e[13]),
        priority=int(float(e[14] or 0)),
        created_ms=int(float(e[15])),
        expires_ms=float(e[16]) if e[16] else None,
    )


def _missing(e: list[Any]) -> MissingAtPickup:
    task, plan = e[4].decode(), e[5].decode()
    return MissingAtPickup(e[0].decode(), int(float(e[2])), int(e[3]), task, plan, _text(e[6]))


def iso_ms(now_ms: float) -> str:
    """The audit trail's time format (pydantic's JSON for an aware UTC datetime)."""
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


class Pickup:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        record_ttl: int,
        result_ttl: int,
        tasks: Iterable[str],
        leave_missing_ms: int = 0,
    ) -> None:
        self._script = record_script(redis, "start")
        self._layout = layout_args(keys, record_ttl=record_ttl, result_ttl=result_ttl)
        self._tasks = "," + ",".join(tasks) + ","
        self._leave_missing_ms = leave_missing_ms  # see start.lua's ARGV 25

    async def claim(
        self, queue: str, *, wanted: int, now_ms: int, scan: int, lease_ms: int, worker_id: str
    ) -> tuple[list[Picked], int | None]:
        """Up to ``wanted`` started jobs (plus any expired on the way), and the score (ms) at
        which the next entry not yet due becomes due, if any."""
        args: list[str | int] = [
            *self._layout,
            now_ms,
            wanted,
            scan,
            lease_ms,
            worker_id,
            iso_ms(now_ms),
            self._tasks,
            self._leave_missing_ms,
        ]
        reply = await self._script(keys=[queue], args=args)
        next_due = int(float(reply[0])) if float(reply[0]) >= 0 else None
        jobs: list[Picked] = []
        for e in reply[1:]:
            kind = e[1]
            if kind == b"expired":
                jobs.append(ExpiredAtPickup(e[0].decode(), e[2].decode(), _text(e[3])))
                continue
            if kind == b"missing":
                jobs.append(_missing(e))
                continue
            if kind == b"corrupt":
                jobs.append(CorruptAtPickup(e[0].decode()))
                continue
            record = _started(e) if kind == b"run" else None
            jobs.append(Claimed(e[0].decode(), int(float(e[2])), int(e[3]), bytes(e[4]), record))
        return jobs, next_due
