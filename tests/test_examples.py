"""The examples run as users would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_embed_in_app_runs_jobs_inside_its_own_loop(redis_url: str, key_prefix: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(JOBRUNNER_REDIS_URL=redis_url, JOBRUNNER_KEY_PREFIX=key_prefix)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "embed_in_app.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "acme: {'seller': 'acme', 'distinct_skus': 2}" in lines
    assert "initech: {'seller': 'initech', 'distinct_skus': 4}" in lines
    assert lines[-1] == "all uploads processed"
