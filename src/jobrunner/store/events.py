"""Live job events over Redis pub/sub (published by the Lua scripts and progress writes).

The scripts that start and finish jobs publish a status event only while the job's record counts
a watcher (its ``watchers`` field): a feed subscribes, then counts itself, then its reader reads
the record, so every change is either seen in that read or published to the feed.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from jobrunner.domain.models import JobEvent, ms_to_dt
from jobrunner.store.codec import pairs_to_hash
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


# +1 / -1 on a record's watchers; never creates a record, drops the field at zero. With ARGV[2]
# set it also returns the record (the watcher's first read, in the same round trip).
_WATCHERS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local n = redis.call('HINCRBY', KEYS[1], 'watchers', ARGV[1])
if n <= 0 then redis.call('HDEL', KEYS[1], 'watchers') end
if ARGV[2] == '1' then return {n, redis.call('HGETALL', KEYS[1])} end
return {n}
"""


class EventFeed:
    """One subscription to one job's channel. Open it before reading the job's state, so no
    event published between that read and the subscription is lost."""

    def __init__(self, pubsub: PubSub, redis: Redis, record_key: str) -> None:
        self._pubsub = pubsub
        self._count = redis.register_script(_WATCHERS)
        self._record_key = record_key
        self._counted = False
        # the record as it was once the feed listened (empty: there is no such record)
        self.record_fields: dict[bytes, bytes] = {}

    @classmethod
    async def open(cls, redis: Redis, keys: Keys, job_id: str) -> EventFeed:
        feed = cls(redis.pubsub(), redis, keys.job(job_id))
        try:
            await feed._pubsub.subscribe(keys.events(job_id))
            reply = await feed._count(keys=[feed._record_key], args=[1, 1])
            feed._counted = int(reply[0]) > 0
            feed.record_fields = pairs_to_hash(reply[1]) if len(reply) > 1 else {}
        except BaseException:
            await feed.close()
            raise
        return feed

    async def next(self, timeout: float) -> JobEvent | None:
        """The next event, or None when nothing arrived within ``timeout`` seconds."""
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        if message is None or message.get("type") != "message":
            return None
        return parse_event(message["data"])

    async def close(self) -> None:
        if self._counted:
            self._counted = False
            with contextlib.suppress(Exception):  # a count left behind only costs publishes
                await self._count(keys=[self._record_key], args=[-1, 0])
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
