"""What crosses to a real pipeline child and back: JSON values, allowed functions only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobrunner.errors import PermanentError, WireError
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf_ranges import release_kept
from jobrunner.pipelines.validation.rules import load_ruleset
from jobrunner.tasks.child import Call
from jobrunner.tasks.offload import Caps, call_in, run_in_child
from jobrunner.tasks.pool import ProcessPool
from tests.tasks import child_functions as fns
from tests.tasks.job_context import job_context

CAPS = Caps(memory_bytes=256 * 1024 * 1024, cpu_seconds=60, stop_grace=0.5)


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    pool = ProcessPool(1, name="test", allow=(fns.__name__,))
    yield pool
    await pool.close()


async def test_kwargs_cross_and_come_back_as_what_they_were(pool: ProcessPool) -> None:
    values = {
        "path": Path("/data/in.csv"),
        "span": (0, 16),
        "limits": InputLimits(max_columns=9),
        "ruleset": load_ruleset("mercado_livre"),
        "tagged": {"__wire__": "tuple", "items": "not a tuple"},
        "text": "Olá \U0001f600",
    }
    back = await run_in_child(job_context(), pool, fns.echo, CAPS, **values)
    assert back["values"] == values
    assert back["types"] == {k: type(v).__name__ for k, v in values.items()}


async def test_a_return_value_with_no_codec_fails_the_call_not_the_child(
    pool: ProcessPool,
) -> None:
    with pytest.raises(PermanentError, match=r"returns_bytes.*builtins\.bytes") as info:
        await run_in_child(job_context(), pool, fns.returns_bytes, CAPS)
    assert info.value.code == "pipeline_value_unsupported"
    with pytest.raises(PermanentError) as odd:  # the error arrives, less its details
        await run_in_child(job_context(), pool, fns.refuses_with_odd_details, CAPS)
    assert odd.value.code == "bad_input" and "details_lost" in odd.value.details
    assert await run_in_child(job_context(), pool, fns.whoami, CAPS) in pool.pids
    assert pool.started == 1


async def test_kwargs_with_no_codec_fail_before_anything_is_sent(pool: ProcessPool) -> None:
    with pytest.raises(WireError, match=r"builtins\.set"):
        await run_in_child(job_context(), pool, fns.echo, CAPS, rows={1, 2})
    assert await run_in_child(job_context(), pool, fns.whoami, CAPS) in pool.pids


async def test_a_child_refuses_functions_outside_its_allowed_modules() -> None:
    pool = ProcessPool(1, name="test")  # no test modules allowed
    try:
        with pytest.raises(PermanentError, match=r"tests\.tasks\.child_functions:whoami") as info:
            await run_in_child(job_context(), pool, fns.whoami, CAPS)
        assert info.value.code == "pipeline_call_refused"
        child = await pool.acquire()
        assert child is not None
        try:
            for ref in ("os:system", "jobrunner.pipelines.rows:os.system", "subprocess:run"):
                call = Call(ref, {"args": "touch /tmp/pwned"}, progress=False)
                with pytest.raises(PermanentError) as refused:
                    await call_in(job_context(), child, call, CAPS, lost_code="lost")
                assert refused.value.code == "pipeline_call_refused"
        finally:
            pool.release(child)
        # a pipeline function still runs, in the same child
        assert await run_in_child(job_context(), pool, release_kept, CAPS, progress=None) is None
        assert pool.started == 1
    finally:
        await pool.close()
