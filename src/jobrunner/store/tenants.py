"""API keys and tenants.

A key is stored under the SHA-256 of its text, never the text itself: a leaked Redis dump
gives no usable key. Keys are long random strings (``jr_<key_id>_<43 random chars>``), so an
unsalted digest is safe to look up by. Each key names one tenant and one plan, and may carry
its own monthly quota and request rate. A tenant's webhook secret (used to sign callbacks)
is kept beside, in the tenant's hash, since signing needs the secret itself.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from jobrunner.store.keys import Keys

__all__ = ["ApiKey", "ApiKeys", "key_digest", "new_key_text"]

KEY_TEXT_PREFIX = "jr_"


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_key_text() -> tuple[str, str]:
    """A fresh key: (its id, its text)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_TEXT_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def _key_id_of(api_key: str) -> str | None:
    """The id inside a key's text (``jr_<id>_...``), or None for text of another shape."""
    if not api_key.startswith(KEY_TEXT_PREFIX):
        return None
    key_id, sep, _ = api_key[len(KEY_TEXT_PREFIX) :].partition("_")
    return key_id if sep and key_id.isalnum() else None


@dataclass(frozen=True)
class ApiKey:
    """What a key grants; ``None`` limits mean the plan's defaults."""

    key_id: str
    tenant: str
    plan: str
    created_at: datetime
    monthly_quota: int | None = None
    rate_limit_per_s: float | None = None

    def fields(self) -> dict[str, str]:
        out = {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "plan": self.plan,
            "created_ms": repr(self.created_at.timestamp() * 1000),
        }
        if self.monthly_quota is not None:
            out["monthly_quota"] = str(self.monthly_quota)
        if self.rate_limit_per_s is not None:
            out["rate_limit_per_s"] = repr(self.rate_limit_per_s)
        return out

    @classmethod
    def decode(cls, raw: dict[bytes, bytes]) -> ApiKey:
        h = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            key_id=h["key_id"],
            tenant=h["tenant"],
            plan=h["plan"],
            created_at=datetime.fromtimestamp(float(h["created_ms"]) / 1000, tz=UTC),
            monthly_quota=int(h["monthly_quota"]) if "monthly_quota" in h else None,
            rate_limit_per_s=float(h["rate_limit_per_s"]) if "rate_limit_per_s" in h else None,
        )


class ApiKeys:
    """Create, look up, list and revoke API keys; a tenant's webhook secret."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(
        self,
        tenant: str,
        plan: str,
        *,
        monthly_quota: int | None = None,
        rate_limit_per_s: float | None = None,
        api_key: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: (what it grants, its text, shown once). ``api_key`` re-registers a key
        whose text is known (``jobrunner up``'s development key after a Redis reset)."""
        key_id, text = new_key_text()
        if api_key is not None:
            key_id, text = _key_id_of(api_key) or key_id, api_key
        record = ApiKey(
            key_id=key_id,
            tenant=tenant,
            plan=plan,
            created_at=datetime.now(tz=UTC),
            monthly_quota=monthly_quota,
            rate_limit_per_s=rate_limit_per_s,
        )
        digest = key_digest(text)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.api_key(digest), mapping=record.fields())
            pipe.hset(self.keys.api_keys, key_id, digest)
            await pipe.execute()
        return record, text

    async def lookup(self, api_key: str) -> ApiKey | None:
        """What ``api_key`` grants, or None for an unknown or revoked key."""
        raw = await self.redis.hgetall(self.keys.api_key(key_digest(api_key)))  # type: ignore[misc]
        return ApiKey.decode(raw) if raw else None

    async def get(self, key_id: str) -> ApiKey | None:
        """The key with this id, or None once it is revoked (or never was)."""
        digest = await self.redis.hget(self.keys.api_keys, key_id)  # type: ignore[misc]
        if digest is None:
            return None
        raw = await self.redis.hgetall(self.keys.api_key(bytes(digest).decode()))  # type: ignore[misc]
        return ApiKey.decode(raw) if raw else None

    async def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (or one tenant's), oldest first; never a key's text or digest."""
        ids: dict[bytes, bytes] = await self.redis.hgetall(self.keys.api_keys)  # type: ignore[misc]
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in ids.values():
                pipe.hgetall(self.keys.api_key(digest.decode()))
            raws = await pipe.execute()
        found = [ApiKey.decode(raw) for raw in raws if raw]
        found = [k for k in found if tenant is None or k.tenant == tenant]
        return sorted(found, key=lambda k: (k.created_at, k.key_id))

    async def revoke(self, key_id: str) -> bool:
        """Delete a key; it is refused from the next request on. False if there was none."""
        digest = await self.redis.hget(self.keys.api_keys, key_id)  # type: ignore[misc]
        if digest is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.api_key(digest.decode()))
            pipe.hdel(self.keys.api_keys, key_id)
            await pipe.execute()
        return True

    async def set_webhook_secret(self, tenant: str, secret: str) -> None:
        await self.redis.hset(self.keys.tenant(tenant), "webhook_secret", secret)  # type: ignore[misc]

    async def webhook_secret(self, tenant: str) -> str | None:
        """The secret callbacks of ``tenant`` are signed with, if one was set."""
        raw = await self.redis.hget(self.keys.tenant(tenant), "webhook_secret")  # type: ignore[misc]
        return None if raw is None else bytes(raw).decode()
