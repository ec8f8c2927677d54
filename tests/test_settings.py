"""Settings come from JOBRUNNER_* variables when an entry point builds them, never at import."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from jobrunner.settings import Settings


def test_lists_and_numbers_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRUNNER_WORKER_QUEUES", "enterprise, pro")
    monkeypatch.setenv("JOBRUNNER_CONCURRENCY", "64")
    monkeypatch.setenv("JOBRUNNER_PLAN_SHARES", '{"enterprise": 80, "pro": 20}')
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.worker_queues == ("enterprise", "pro")
    assert settings.concurrency == 64
    assert settings.plan_shares == {"enterprise": 80, "pro": 20}
    assert settings.redis_url is None


def test_unknown_queue_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRUNNER_WORKER_QUEUES", "gold")
    with pytest.raises(ValidationError, match="unknown plans"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_importing_the_worker_package_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRUNNER_CONCURRENCY", "not-a-number")  # would fail if read
    for name in [m for m in sys.modules if m.startswith("jobrunner.worker")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("jobrunner.worker")
    with pytest.raises(ValidationError):
        _ = module.WorkerSettings  # built on first access, from the environment of that moment


def test_env_example_lists_every_setting_and_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(__file__).resolve().parents[1] / ".env.example"
    text = path.read_text()
    for name in Settings.model_fields:
        assert f"JOBRUNNER_{name.upper()}=" in text, name
    for key in [k for k in os.environ if k.startswith("JOBRUNNER_")]:
        monkeypatch.delenv(key)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    # the example documents the defaults: reading it changes nothing
    assert Settings(_env_file=None) == defaults  # type: ignore[call-arg]
