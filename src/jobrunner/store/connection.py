"""Redis clients: arq's ``ArqRedis`` over a pool that retries through restarts, never hangs."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobrunner.errors import ConfigError, RedisUnavailableError
from jobrunner.serializer import deserialize, serialize


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def create_redis(url: str, *, timeout: float, default_queue: str) -> ArqRedis:
    """An arq pool (JSON serializer) that retries a command through a brief Redis outage."""
    try:
        pool = _pool(url, timeout)
    except ValueError as exc:  # redis-py's answer to a bad scheme or a malformed URL
        raise ConfigError(f"invalid Redis URL {redact(url)}: {exc}", url=redact(url)) from exc
    return ArqRedis(
        connection_pool=pool,
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=default_queue,
    )


def _pool(url: str, timeout: float) -> ConnectionPool:
    return ConnectionPool.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        # ~8 s of reconnect attempts: a Redis restart is ridden out instead of killing workers;
        # callers that must answer quickly (enqueue, get) put their own deadline on top.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=12),
        health_check_interval=30,
    )


async def connect(url: str, *, timeout: float, default_queue: str) -> ArqRedis:
    """Create and ping; a Redis that does not answer within ``timeout`` is a clear error."""
    redis = create_redis(url, timeout=timeout, default_queue=default_queue)
    try:
        async with asyncio.timeout(timeout * 2):
            await redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        await redis.aclose(close_connection_pool=True)
        reason = unavailable_reason(exc, timeout * 2)
        raise RedisUnavailableError(
            f"cannot reach Redis at {redact(url)}: {reason}", url=redact(url)
        ) from exc
    return redis


def unavailable_reason(exc: BaseException, deadline: float) -> str:
    """Why Redis did not answer, never empty: a deadline that passed has no message of its own."""
    if str(exc):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer within {deadline:g}s"
    return type(exc).__name__
