"""Many machines, one Redis, one bucket: an input uploaded on one machine is run on another.

"Machines" are data dirs: the first is this test process (a JobRunner, no worker), the second a
`jobrunner worker` process with its own data dir and only its `.env`-style settings in its
environment. The bucket is the session's local S3-compatible server (moto's emulator, see
tests/s3_server.py).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobrunner.domain.status import JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.tasks.catalog import build_registry
from tests.conftest import make_settings
from tests.s3_server import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture
def shared(s3_server: S3Server) -> dict[str, Any]:
    """What every machine's .env says about the bucket (a fresh prefix per test)."""
    return s3_server.settings_for()


@pytest.fixture
def second_machine(
    redis_url: str, key_prefix: str, shared: dict[str, Any], tmp_path: Path
) -> Iterator[Path]:
    data_dir = tmp_path / "second"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBRUNNER_", "AWS_"))}
    env.update({f"JOBRUNNER_{name.upper()}": str(value) for name, value in shared.items()})
    env.update(
        JOBRUNNER_REDIS_URL=redis_url,
        JOBRUNNER_KEY_PREFIX=key_prefix,
        JOBRUNNER_DATA_DIR=str(data_dir),
        JOBRUNNER_INLINE_RESULT_MAX_BYTES="64",  # results go to the bucket too
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobrunner.cli", "worker", "--concurrency", "4"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield data_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


async def test_an_upload_made_here_is_run_there_and_its_outputs_read_here(
    redis_url: str,
    key_prefix: str,
    shared: dict[str, Any],
    second_machine: Path,
    tmp_path: Path,
) -> None:
    first = make_settings(redis_url, key_prefix, tmp_path / "first", **shared)
    sales = b"region,amount\nnorth,10\nsouth,5\nnorth,7\n"
    async with JobRunner(first, build_registry(first)) as here:
        uri = await here.blobs.put_bytes(sales, name="sales.csv", scheme="upload")
        job = await here.enqueue(
            "generate_report",
            {"input_uri": uri, "group_by": ["region"], "format": "csv",
             "metrics": [{"column": "amount", "agg": "sum"}]},
        )  # fmt: skip
        done = await here.wait(job.id, timeout=60)
        assert done.status is JobStatus.SUCCEEDED, done.error
        assert done.worker_id is not None and str(os.getpid()) not in done.worker_id
        assert done.result_ref is not None  # the result itself went through the bucket
        result = await here.result(job.id)
        report = await here.blobs.get_bytes(result["report_ref"])
    rows = list(csv.reader(io.StringIO(report.decode())))
    assert rows == [["region", "amount_sum"], ["north", "17"], ["south", "5"]]
    # the first machine kept nothing on its disk; the second read its input from its cache
    assert not (tmp_path / "first" / "blobs").exists()
    assert not (second_machine / "blobs").exists()
    cached = [p for p in (second_machine / "blob-cache").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in cached] == [sales]
