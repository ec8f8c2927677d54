"""The examples run as users would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_embed_output(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "acme: {'seller': 'acme', 'distinct_skus': 2}",
        "globex: {'seller': 'globex', 'distinct_skus': 1}",
        "initech: {'seller': 'initech', 'distinct_skus': 4}",
        "all uploads processed",
    ]


def test_embed_in_app_on_a_shared_redis(redis_url: str, key_prefix: str, tmp_path: Path) -> None:
    done = run_example(
        "embed_in_app.py", tmp_path, JOBRUNNER_REDIS_URL=redis_url, JOBRUNNER_KEY_PREFIX=key_prefix
    )
    assert_embed_output(done)


@pytest.mark.slow
def test_embed_in_app_on_its_own_embedded_redis(tmp_path: Path) -> None:
    assert_embed_output(run_example("embed_in_app.py", tmp_path))
