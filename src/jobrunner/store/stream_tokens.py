"""Stream tokens: short-lived, read-only grants to follow one job's live events.

A browser's ``EventSource`` (and a WebSocket opened from a page) cannot send an
``Authorization`` header, and an API key has no place in a browser anyway. The application's
backend asks for a token for one job (``POST /api/v1/jobs/{id}/stream-token``) and hands the
page a URL carrying it (``?token=``). A token grants nothing but that job's stream, until it
expires. Like API keys, tokens are stored under their SHA-256, never as text.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from jobrunner.store.keys import Keys
from jobrunner.store.tenants import key_digest

__all__ = ["StreamGrant", "StreamTokens"]

TOKEN_PREFIX = "jst_"


@dataclass(frozen=True)
class StreamGrant:
    tenant: str
    job_id: str


class StreamTokens:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def issue(self, grant: StreamGrant, ttl_seconds: int) -> str:
        """A new token for ``grant``, valid for ``ttl_seconds``."""
        token = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
        value = json.dumps({"tenant": grant.tenant, "job_id": grant.job_id})
        await self.redis.set(self.keys.stream_token(key_digest(token)), value, ex=ttl_seconds)
        return token

    async def lookup(self, token: str) -> StreamGrant | None:
        """What ``token`` grants, or None (unknown, expired, or not a stream token)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        raw = await self.redis.get(self.keys.stream_token(key_digest(token)))
        if raw is None:
            return None
        data = json.loads(raw)
        return StreamGrant(tenant=str(data["tenant"]), job_id=str(data["job_id"]))
