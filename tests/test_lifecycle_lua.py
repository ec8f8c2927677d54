"""The lifecycle table in domain/status.py is the one source of allowed moves: the Lua scripts
carry a copy rendered from it, and a move the table forbids is refused by the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from jobrunner.domain.models import AuditEntry
from jobrunner.domain.status import TRANSITIONS, JobStatus
from jobrunner.runtime import JobRunner
from jobrunner.store.jobs import Transition
from jobrunner.store.scripts import lua_source, transitions_lua


def test_the_rendered_table_is_the_python_table() -> None:
    rendered = transitions_lua()
    for current, targets in TRANSITIONS.items():
        inner = ", ".join(f"{t.value} = true" for t in sorted(targets))
        assert f"{current.value} = {{{inner}}}" in rendered
    assert "--TRANSITIONS--" in lua_source("lib_record")


@pytest.mark.parametrize("current", list(JobStatus))
async def test_the_store_moves_exactly_as_the_table_allows(
    runner: JobRunner, current: JobStatus
) -> None:
    job = await runner.enqueue("demo.echo", {}, plan="free")
    key = runner.keys.job(job.id)
    for target in JobStatus:
        await runner.redis.hset(key, "status", current.value)
        change = Transition(
            target=target,
            fields={},
            audit=AuditEntry(at=datetime.now(tz=UTC), event="probe", status=target),
        )
        moved = await runner.store.transition(job.id, change, time.time() * 1000)
        assert moved is (target in TRANSITIONS[current]), (current, target)
        status = (await runner.redis.hget(key, "status") or b"").decode()
        assert status == (target.value if moved else current.value)
