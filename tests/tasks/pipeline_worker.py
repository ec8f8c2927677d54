"""A real worker running the pipeline tasks, with the PipelineTasks object in reach."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobrunner.domain.models import JobRecord
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.tasks.pipelines import PipelineTasks
from jobrunner.worker.runner import WorkerRunner
from tests.conftest import make_settings

MB = 1024 * 1024


@dataclass
class Rig:
    runner: JobRunner
    pipelines: PipelineTasks
    worker: WorkerRunner

    async def run(self, task: str, params: dict[str, Any], timeout: float = 60) -> JobRecord:
        job = await self.runner.enqueue(task, params)
        return await self.runner.wait(job.id, timeout=timeout)

    async def upload(self, data: bytes, name: str) -> str:
        return await self.runner.blobs.put_bytes(data, name=name, scheme="upload")


@contextlib.asynccontextmanager
async def pipeline_worker(
    redis_url: str, key_prefix: str, data_dir: Path, **overrides: Any
) -> AsyncIterator[Rig]:
    values: dict[str, Any] = {
        "pipeline_memory_mb": 256,
        "pipeline_stop_grace_seconds": 0.5,
        "pipeline_processes": 1,
        "connector_allow_private": True,
    }
    settings = make_settings(redis_url, key_prefix, data_dir, **{**values, **overrides})
    pipelines = PipelineTasks(settings)
    registry = Registry(pipelines.tasks(), [pipelines.close])
    async with (
        JobRunner(settings, registry) as runner,
        WorkerRunner(settings, registry, redis=runner.redis) as worker,
    ):
        yield Rig(runner, pipelines, worker)


def gzip_bomb(inflated: int, byte: bytes = b"\0") -> bytes:
    """A gzip of ``inflated`` bytes of ``byte``, built a MiB at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = byte * MB
    parts = [packer.compress(block) for _ in range(inflated // MB)]
    return b"".join(parts) + packer.flush()


async def serve_once(body: bytes, content_type: str = "application/gzip") -> tuple[Any, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nContent-Type: {content_type}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]
