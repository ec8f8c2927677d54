"""Commands that only read or control jobs start without loading task code or the HTTP stack."""

from __future__ import annotations

import os
import subprocess
import sys

from jobrunner.cli import COMMANDS, main

PROBE = """
import sys
from click.testing import CliRunner
from jobrunner.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
heavy = sorted(m for m in ("polars", "pypdfium2", "uvicorn", "jinja2") if m in sys.modules)
print(result.exit_code, ",".join(heavy), result.output.strip().replace("\\n", " "))
"""


def _probe(args: list[str], redis_url: str, key_prefix: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRUNNER_")}
    env.update(JOBRUNNER_REDIS_URL=redis_url, JOBRUNNER_KEY_PREFIX=key_prefix)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, check=True, timeout=60, env=env,
    )  # fmt: skip
    return out.stdout.split(" ", 2)


def test_reading_a_job_loads_no_task_code_and_no_http_server(
    redis_url: str, key_prefix: str
) -> None:
    code, heavy, output = _probe(["status", "0123456789abcdef"], redis_url, key_prefix)
    assert "job_not_found" in output  # it reached Redis and asked, so the client was built
    assert (code, heavy) == ("1", "")


def test_enqueueing_loads_the_task_catalog(redis_url: str, key_prefix: str) -> None:
    code, heavy, output = _probe(["enqueue", "validate_csv"], redis_url, key_prefix)
    assert code == "1" and "input_uri" in output  # refused by the task's params model
    assert "polars" in heavy.split(",")


def test_every_listed_command_loads() -> None:
    for name in COMMANDS:
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
    assert main.get_command(None, "nonsense") is None  # type: ignore[arg-type]
