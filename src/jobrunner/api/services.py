"""What every handler shares: settings, the JobRunner and the API's store modules.

Built once in the app's lifespan and kept on ``app.state``; handlers reach it with
``services(request)``. Only ``store`` modules talk to Redis; ``guard`` bounds each call.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner, redis_errors
from jobrunner.settings import Settings
from jobrunner.store.blobindex import BlobIndex
from jobrunner.store.gate import RequestGate
from jobrunner.store.health import RedisProbe
from jobrunner.store.limits import Limits
from jobrunner.store.stream_tokens import StreamTokens
from jobrunner.store.tenants import ApiKeys

__all__ = ["ApiServices", "services"]


@dataclass
class ApiServices:
    settings: Settings
    runner: JobRunner
    api_keys: ApiKeys = field(init=False)
    limits: Limits = field(init=False)
    blob_index: BlobIndex = field(init=False)
    gate: RequestGate = field(init=False)
    probe: RedisProbe = field(init=False)  # started by the lifespan
    stream_tokens: StreamTokens = field(init=False)

    def __post_init__(self) -> None:
        redis, keys = self.runner.redis, self.runner.keys
        self.api_keys = ApiKeys(redis, keys)
        self.limits = Limits(redis, keys)
        self.blob_index = BlobIndex(
            redis,
            keys,
            ttl_seconds=self.settings.upload_retention_seconds,
            output_ttl_seconds=self.settings.result_ttl_seconds,
        )
        self.gate = RequestGate(
            redis,
            keys,
            plan_rates=self.settings.plan_rate_limits,
            plan_quotas=self.settings.plan_quotas,
        )
        self.probe = RedisProbe(redis)
        self.stream_tokens = StreamTokens(redis, keys)

    @property
    def registry(self) -> Registry:
        return self.runner.registry

    def guard(self, operation: str) -> contextlib.AbstractAsyncContextManager[None]:
        """A Redis failure or a call slower than the deadline becomes RedisUnavailableError."""
        return redis_errors(operation, self.settings.redis_timeout_seconds * 2)


def services(conn: HTTPConnection) -> ApiServices:
    found = getattr(conn.app.state, "services", None)
    if not isinstance(found, ApiServices):
        raise RuntimeError("the API's lifespan has not run: serve the app with lifespan on")
    return found
