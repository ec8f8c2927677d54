"""Ending attempts: a batch of record changes plus arq's own bookkeeping in one Lua call
(lua/finish.lua), so the record is terminal in the same step that removes arq's lease."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from jobrunner.domain.status import JobStatus
from jobrunner.store.codec import encode_fields
from jobrunner.store.keys import Keys
from jobrunner.store.scripts import layout_args, record_script

EndKind = Literal["end", "retry", "interrupt"]


@dataclass(frozen=True, slots=True)
class Ending:
    """How one attempt ends. ``end``: the job is over (arq's cleanup and result); ``retry``: back
    in the queue at ``score``; ``interrupt``: cancelled if a cancel asked for it (then
    ``cancel_audit``), else queued again at ``score``."""

    queue: str
    job_id: str
    attempt: int | None  # None: a job that never started here (its task was missing)
    kind: EndKind
    target: JobStatus
    fields: Mapping[str, Any]
    audit_json: str
    result_json: str | None = None
    arq_result: bytes | None = None
    score: int | None = None
    cancel_audit_json: str = ""

    def wire(self) -> dict[str, Any]:
        """As finish.lua reads it (absent keys: none)."""
        e: dict[str, Any] = {
            "q": self.queue,
            "id": self.job_id,
            "a": "" if self.attempt is None else str(self.attempt),
            "k": self.kind,
            "t": self.target.value,
            "f": encode_fields(self.fields),
            "au": self.audit_json,
        }
        if self.result_json is not None:
            e["r"] = self.result_json
        if self.arq_result is not None:
            e["ar"] = self.arq_result.decode()
        if self.score is not None:
            e["s"] = self.score
        if self.cancel_audit_json:
            e["ca"] = self.cancel_audit_json
        return e


@dataclass(frozen=True, slots=True)
class Ended:
    """What the store did: ``moved`` to ``status``, or refused (``status`` is the current one;
    empty when the job has no record)."""

    moved: bool
    status: str


class Finisher:
    def __init__(self, redis: Redis, keys: Keys, *, record_ttl: int, result_ttl: int) -> None:
        self._script = record_script(redis, "finish")
        self._layout = layout_args(keys, record_ttl=record_ttl, result_ttl=result_ttl)

    async def finish(self, endings: Sequence[Ending], now_ms: float, worker_id: str) -> list[Ended]:
        batch = json.dumps([e.wire() for e in endings], separators=(",", ":"))
        reply = await self._script(keys=[], args=[*self._layout, repr(now_ms), worker_id, batch])
        return [Ended(int(code) == 1, bytes(status).decode()) for code, status in reply]
