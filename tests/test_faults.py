"""Faults with real processes and a real redis-server: a job that kills its worker, a worker
SIGKILLed mid-job, Redis killed or stopped under load. Every process is killed at the end."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis as sync_redis

from jobrunner.domain.status import TERMINAL, JobStatus
from jobrunner.embedded import find_redis_server, free_port, server_args
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry
from tests.clitools import CLI
from tests.conftest import make_settings, start_redis, wait_for_port
from tests.faulttasks import TASKS
from tests.polling import eventually, wait_running
from tests.processes import Proc, base_env, processes, wait_for_async, wait_http, wait_registered

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]  # workers import tests.faulttasks from here


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return build_registry(settings, extra=TASKS)


def fault_env(redis_url: str, key_prefix: str, data: Path, **extra: str) -> dict[str, str]:
    return base_env(
        JOBRUNNER_REDIS_URL=redis_url,
        JOBRUNNER_KEY_PREFIX=key_prefix,
        JOBRUNNER_DATA_DIR=str(data),
        JOBRUNNER_DEMO_TASKS="true",
        JOBRUNNER_TASKS="tests.faulttasks:TASKS",
        JOBRUNNER_PIPELINE_TASKS="false",
        JOBRUNNER_ADMIN_TOKEN="fault-admin",
        **extra,
    )


def start_worker(
    env: dict[str, str], log: Path, queues: str, started: list[Proc], concurrency: int = 4
) -> Proc:
    command = [*CLI, "worker", "--queues", queues, "--concurrency", str(concurrency)]
    proc = Proc(command, env, log, cwd=ROOT)
    started.append(proc)
    return proc


def worker_pid(worker_id: str | None) -> int:
    assert worker_id is not None
    return int(worker_id.rsplit("-", 2)[1])  # <host>-<pid>-<random>


async def test_a_poison_job_fails_and_harms_no_other_worker_or_job(
    runner: JobRunner, tmp_path: Path
) -> None:
    s = runner.settings
    env = fault_env(
        runner.redis_url, s.key_prefix, s.data_dir,
        JOBRUNNER_LEASE_SECONDS="2", JOBRUNNER_HEARTBEAT_SECONDS="0.5",
        JOBRUNNER_MAX_INTERRUPTIONS="2",
    )  # fmt: skip
    with processes() as started:
        bystander = start_worker(env, tmp_path / "bystander.log", "enterprise", started)
        # one job at a time on the poison job's queue: a process that dies takes every job
        # running in it along, so an innocent job beside the poison one would be interrupted too
        pro = [
            start_worker(env, tmp_path / f"pro-{i}.log", "pro", started, concurrency=1)
            for i in range(2)
        ]
        for proc in (bystander, *pro):
            await asyncio.to_thread(wait_registered, proc, runner.redis_url, s.key_prefix)
        poison = await runner.enqueue("tests.poison", {}, plan="pro", max_tries=3)
        others = [
            await runner.enqueue("demo.echo", {"n": n}, plan=plan)
            for n in range(10)
            for plan in ("pro", "enterprise")
        ]
        deaths = 0
        deadline = time.monotonic() + 90
        while (await runner.get(poison.id)).status not in TERMINAL:  # a supervisor's loop
            assert time.monotonic() < deadline, "the poison job never ended"
            for i, proc in enumerate(pro):
                if proc.proc.poll() is not None:  # its worker died: start another, as Docker would
                    deaths += 1
                    log = tmp_path / f"pro-{i}.log"
                    pro[i] = start_worker(env, log, "pro", started, concurrency=1)
            await asyncio.sleep(0.05)
        deaths += sum(proc.proc.poll() is not None for proc in pro)
        done = await runner.get(poison.id)
        assert done.status is JobStatus.FAILED
        assert done.error is not None and done.error.code == "too_many_interruptions"
        # each of 3 runs (JOBRUNNER_MAX_INTERRUPTIONS=2, +1) killed its worker; the 4th pickup
        # failed the job without running it
        assert (deaths, done.interruptions, done.attempts) == (3, 3, 4)
        for job in others:
            ended = await runner.wait(job.id, timeout=60)
            assert (ended.status, ended.interruptions) == (JobStatus.SUCCEEDED, 0)
        bystander.check_alive()
        assert bystander.stop(30) == 0, bystander.output()


async def test_a_killed_workers_one_hour_job_runs_again_within_30s_elsewhere(
    runner: JobRunner, tmp_path: Path
) -> None:
    s = runner.settings
    env = fault_env(runner.redis_url, s.key_prefix, s.data_dir)  # the default 15 s lease
    with processes() as started:
        workers = [start_worker(env, tmp_path / f"w{i}.log", "pro", started) for i in range(2)]
        for proc in workers:
            await asyncio.to_thread(wait_registered, proc, runner.redis_url, s.key_prefix)
        job = await runner.enqueue(
            "demo.sleep", {"seconds": 3, "steps": 6}, plan="pro", timeout_seconds=3600
        )
        await wait_running(runner, job.id)
        first = worker_pid((await runner.get(job.id)).worker_id)
        (victim,) = [w for w in workers if w.pid == first]
        (other,) = [w for w in workers if w.pid != first]
        victim.kill()  # SIGKILL, process group and all
        killed_at = time.monotonic()
        done = await runner.wait(job.id, timeout=45)
        took = time.monotonic() - killed_at
        assert done.status is JobStatus.SUCCEEDED
        assert done.timeout_seconds == 3600  # arq alone would hold the job for an hour and 10 s
        assert worker_pid(done.worker_id) == other.pid
        assert (done.attempts, done.interruptions) == (2, 1)
        assert took < 30, f"ran again and finished {took:.1f}s after the kill"
        assert other.stop(30) == 0, other.output()


class AofRedis:
    """A redis-server of the test's own with AOF fsynced at every write (as docker/compose.yaml
    runs it), killed and started again on the same port and directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        directory.mkdir(parents=True, exist_ok=True)
        self.proc = self._start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _start(self) -> subprocess.Popen[bytes]:
        args = [*server_args(self.directory, self.port, persist=True), "--appendfsync", "always"]
        proc = subprocess.Popen([find_redis_server(), *args])
        wait_for_port(self.port)
        return proc

    def end(self, how: signal.Signals) -> None:
        self.proc.send_signal(how)
        self.proc.wait(30)

    def start_again(self) -> None:
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class PlainRedis(AofRedis):
    """A redis-server of the test's own without persistence."""

    def _start(self) -> subprocess.Popen[bytes]:
        return start_redis(self.directory, self.port, persist=False)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[AofRedis]:
    server = AofRedis(tmp_path / "aof-redis")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Load:
    """Submits demo.echo jobs through the API from a thread until stopped; keeps the ids of
    the acknowledged (202) ones."""

    url: str
    api_key: str
    acked: list[str] = field(default_factory=list)
    refused: list[int | str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(base_url=self.url, timeout=10, headers=auth) as http:
            n = 0
            while not self.stopping.is_set():
                n += 1
                body = {"task": "demo.echo", "params": {"n": n}}
                try:
                    reply = http.post("/api/v1/jobs", json=body)
                except httpx.TransportError as exc:
                    self.refused.append(type(exc).__name__)
                    continue
                if reply.status_code == 202:
                    self.acked.append(reply.json()["id"])
                else:
                    assert reply.status_code == 503, reply.text  # Redis away: nothing else
                    self.refused.append(reply.status_code)


def api_key(url: str) -> str:
    made = httpx.post(
        f"{url}/api/v1/admin/keys",
        json={"tenant": "acme", "plan": "pro", "rate_limit_per_s": 100000},
        headers={"Authorization": "Bearer fault-admin"},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["api_key"])


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_redis_restarted_under_load_loses_no_acknowledged_job(
    aof_redis: AofRedis, key_prefix: str, tmp_path: Path, how: signal.Signals
) -> None:
    env = fault_env(aof_redis.url, key_prefix, tmp_path / "data")
    port = free_port()
    with processes() as started:
        api = Proc([*CLI, "api", "--port", str(port)], env, tmp_path / "api.log", cwd=ROOT)
        started.append(api)
        workers = [start_worker(env, tmp_path / f"w{i}.log", "pro", started) for i in range(2)]
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http, api, f"{url}/healthz")
        for proc in workers:
            await asyncio.to_thread(wait_registered, proc, aof_redis.url, key_prefix)
        load = Load(url, await asyncio.to_thread(api_key, url))
        sender = asyncio.create_task(asyncio.to_thread(load.run))
        try:
            await wait_for_async(lambda: len(load.acked) >= 100, "100 jobs before the restart")
            before = len(load.acked)
            await asyncio.to_thread(aof_redis.end, how)
            # down until the API says so (its probe answers 503 to submissions), then back
            await wait_for_async(lambda: load.refused, "the API to refuse while Redis is down")
            await asyncio.to_thread(aof_redis.start_again)
            await wait_for_async(lambda: len(load.acked) >= before + 100, "100 jobs after it")
        finally:
            load.stopping.set()
            await sender
        for proc in (api, *workers):
            proc.check_alive()  # the same processes: they reconnected
        settings = make_settings(aof_redis.url, key_prefix, tmp_path / "data")
        async with JobRunner(settings, build_registry(settings)) as runner:
            for job_id in load.acked:
                done = await runner.wait(job_id, timeout=60)
                assert done.status is JobStatus.SUCCEEDED, done
        for proc in workers:
            assert proc.stop(30) == 0, proc.output()
        assert api.stop(30) in (0, -signal.SIGTERM), api.output()


def used_memory(url: str) -> int:
    """Redis's memory less its clients' buffers: a connection pool grown under load is not
    memory the jobs left behind."""
    client = sync_redis.Redis.from_url(url)
    try:
        info = client.info("memory")
        return int(info["used_memory"]) - int(info["mem_clients_normal"])
    finally:
        client.close()


def blob_files(data: Path) -> list[Path]:
    root = data / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


SHORT_RETENTION = {
    "JOBRUNNER_CLEANUP_CRON": "0 3 1 1 *",  # the workers' own runs stay out of the way
    "JOBRUNNER_PRUNE_CRON": "0 3 1 1 *",
    "JOBRUNNER_RECORD_TTL_SECONDS": "2",
    "JOBRUNNER_RESULT_TTL_SECONDS": "2",
    "JOBRUNNER_IDEMPOTENCY_TTL_SECONDS": "2",
    "JOBRUNNER_UPLOAD_RETENTION_HOURS": "0.0005",  # 1.8 s
    "JOBRUNNER_INLINE_RESULT_MAX_BYTES": "512",  # the padded jobs' results become blobs
}


async def test_after_many_jobs_and_a_cleanup_redis_and_the_blob_dir_are_back_to_the_start(
    tmp_path: Path,
) -> None:
    """Bench scale: bench/soak.py (100,000 jobs through the API); here 2,000 jobs, 100 of them
    with a blob result, and 10 uploads through the API."""
    server = PlainRedis(tmp_path / "redis")
    data = tmp_path / "data"
    env = fault_env(server.url, "cleanup", data, **SHORT_RETENTION)
    port = free_port()
    try:
        with processes() as started:
            api = Proc([*CLI, "api", "--port", str(port)], env, tmp_path / "api.log", cwd=ROOT)
            started.append(api)
            worker = Proc(
                [*CLI, "worker", "--queues", "pro", "--concurrency", "50"],
                env, tmp_path / "worker.log", cwd=ROOT,
            )  # fmt: skip
            started.append(worker)
            url = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(wait_http, api, f"{url}/readyz")
            await asyncio.to_thread(wait_registered, worker, server.url, "cleanup")
            start = await asyncio.to_thread(used_memory, server.url)
            await _many_jobs_and_uploads(server.url, data, url)
            assert await asyncio.to_thread(used_memory, server.url) > start * 2
            assert len(blob_files(data)) >= 110
            cleanup = await asyncio.to_thread(_cleanup, env)
            assert cleanup["jobs_pruned"] == 2000, cleanup
            assert (cleanup["uploads_deleted"], cleanup["outputs_deleted"]) == (10, 100), cleanup
            assert blob_files(data) == []
            # Redis hands memory back in its own cron (expired keys, shrinking its key tables)

            async def memory() -> int:
                return await asyncio.to_thread(used_memory, server.url)

            after = await eventually(memory, lambda m: abs(m - start) <= start * 0.10, timeout=10)
            assert abs(after - start) <= start * 0.10, (start, after)
            assert worker.stop(30) == 0, worker.output()
    finally:
        server.stop()


async def _many_jobs_and_uploads(redis_url: str, data: Path, api_url: str) -> None:
    settings = make_settings(redis_url, "cleanup", data, **_lowered(SHORT_RETENTION))
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        auth = {"Authorization": f"Bearer {await asyncio.to_thread(api_key, api_url)}"}
        for n in range(10):
            reply = await http.post(
                "/api/v1/uploads", params={"filename": f"u{n}.csv"}, content=b"a,b\n1,2\n",
                headers={**auth, "Content-Type": "text/csv"},
            )  # fmt: skip
            assert reply.status_code == 201, reply.text
    async with JobRunner(settings, build_registry(settings)) as runner:
        requests = [
            {"task": "demo.echo", "params": {"n": n, "pad": "x" * 600 if n % 20 == 0 else ""},
             "plan": "pro", "tenant": "acme"}
            for n in range(2000)
        ]  # fmt: skip
        jobs = await runner.enqueue_many(requests)

        async def ended() -> dict[tuple[str, str], int]:
            return (await runner.metrics()).completed

        done = await eventually(ended, lambda c: sum(c.values()) >= 2000, timeout=120)
        assert done == {("pro", "succeeded"): 2000}
        # every record's TTL has run out: the event the cleanup waits for
        records = [runner.store.keys.job(job.id) for job in jobs]
        await wait_for_async(lambda: not _exists(redis_url, records), "the records to expire")


def _lowered(env: dict[str, str]) -> dict[str, object]:
    return {k.removeprefix("JOBRUNNER_").lower(): v for k, v in env.items()}


def _exists(url: str, keys: list[str]) -> bool:
    client = sync_redis.Redis.from_url(url)
    try:
        return bool(client.exists(*keys))
    finally:
        client.close()


def _cleanup(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [*CLI, "maintenance", "cleanup", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert isinstance(report, dict)
    return report
