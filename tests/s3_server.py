"""A local S3-compatible server for the S3 blob store's tests.

It is moto's standalone server (``python -m moto.server``), an in-memory emulator of the S3 API,
started once per test session as a subprocess on a free loopback port. It speaks the same HTTP
API as AWS S3, MinIO or R2 (multipart uploads included), but it is an emulator: it does not
check credentials or enforce IAM. boto3 (which moto brings) is the independent witness the tests
use to look inside the bucket.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from jobrunner.embedded import free_port

BUCKET = "jobrunner-test"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str = BUCKET

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **CREDENTIALS)

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (sync: call through asyncio.to_thread)."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def etag(self, key: str) -> str:
        return str(self.client().head_object(Bucket=self.bucket, Key=key)["ETag"]).strip('"')

    def pending_uploads(self, prefix: str) -> list[str]:
        """Multipart uploads begun and neither completed nor aborted."""
        found = self.client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [u["Key"] for u in found.get("Uploads", [])]

    def settings_for(self, prefix: str | None = None) -> dict[str, Any]:
        """Settings values pointing a deployment at this server, under a fresh prefix."""
        return {
            "blob_url": f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:12]}",
            "s3_endpoint_url": self.endpoint,
            "s3_region": REGION,
            "s3_access_key_id": CREDENTIALS["aws_access_key_id"],
            "s3_secret_access_key": CREDENTIALS["aws_secret_access_key"],
            "s3_part_bytes": 5 * 1024 * 1024,  # S3's smallest part: multipart from 5 MiB up
            "s3_retry_seconds": 2.0,
        }


def run_s3_server(log_dir: Path) -> Iterator[S3Server]:
    """Start the emulator, create the bucket, yield, stop it."""
    from tests.conftest import wait_for_port

    port = free_port()
    log = (log_dir / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        server = S3Server(f"http://127.0.0.1:{port}")
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
