"""Live job events over Redis pub/sub (published by the Lua scripts and progress writes)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
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
    """One subscription to one job's channel."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def next(self, timeout: float) -> JobEvent | None:
        """The next event, or None when nothing arrived within ``timeout`` seconds."""
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        return parse_event(message["data"])


@contextlib.asynccontextmanager
async def job_events(redis: Redis, keys: Keys, job_id: str) -> AsyncIterator[EventFeed]:
    """Subscribe before reading state, so no event between the read and the subscribe is lost."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events(job_id))
    try:
        yield EventFeed(pubsub)
    finally:
        with contextlib.suppress(Exception):
            await pubsub.unsubscribe()
        await pubsub.aclose()  # type: ignore[no-untyped-call]
