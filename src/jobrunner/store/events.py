"""Live job events over Redis pub/sub (published by the Lua scripts and progress writes)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from jobrunner.domain.models import JobEvent, ms_to_dt
from jobrunner.store.keys import Keys


def event_json(event: JobEvent) -> str:
    data = event.model_dump(mode="json", exclude={"at"})
    data["at_ms"] = event.at.timestamp() * 1000
    return json.dumps(data)


def parse_event(raw: bytes | str) -> JobEvent:
    data: dict[str, Any] = json.loads(raw)
    data["at"] = ms_to_dt(float(data.pop("at_ms", 0)))
    if not isinstance(data.get("message"), str):
        data.pop("message", None)
    return JobEvent.model_validate(data)


class EventFeed:
    """One subscription to one job's channel. Open it before reading the job's state, so no
    event published between that read and the subscription is lost."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    @classmethod
    async def open(cls, redis: Redis, keys: Keys, job_id: str) -> EventFeed:
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(keys.events(job_id))
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        return cls(pubsub)

    async def next(self, timeout: float) -> JobEvent | None:
        """The next event, or None when nothing arrived within ``timeout`` seconds."""
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        return parse_event(message["data"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
