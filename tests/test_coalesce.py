"""The coalescer on its own: what it batches, and who hears which outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from jobrunner.store.coalesce import Coalescer


class Recorder:
    """A ``send`` that answers each item with its double, or with the error planted for it."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.release = asyncio.Event()
        self.release.set()

    async def send(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        return [ValueError(f"bad {i}") if i in self.fail_on else i * 2 for i in items]


async def test_calls_of_one_loop_iteration_go_out_as_one_batch() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.send)
    replies = await asyncio.gather(*(coalescer.call(i) for i in range(50)))
    assert replies == [i * 2 for i in range(50)]
    assert recorder.batches == [list(range(50))]
    assert await coalescer.call(7) == 14  # a lone call goes out at once, alone
    assert recorder.batches[-1] == [7]


async def test_each_caller_gets_its_own_error() -> None:
    recorder = Recorder(fail_on={3, 5})
    coalescer = Coalescer(recorder.send)
    replies = await asyncio.gather(*(coalescer.call(i) for i in range(8)), return_exceptions=True)
    assert len(recorder.batches) == 1
    for i, reply in enumerate(replies):
        if i in (3, 5):
            assert isinstance(reply, ValueError)
            assert str(reply) == f"bad {i}"
        else:
            assert reply == i * 2


async def test_a_failed_send_fails_every_caller_of_that_batch_only() -> None:
    calls = 0

    async def send(items: Sequence[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("gone")
        return list(items)

    coalescer = Coalescer(send)
    first = await asyncio.gather(*(coalescer.call(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in first)
    assert await asyncio.gather(*(coalescer.call(i) for i in range(3))) == [0, 1, 2]


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.send)
    impatient = asyncio.create_task(coalescer.call(1))
    patient = asyncio.create_task(coalescer.call(2))
    while not recorder.batches:
        await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await patient == 4
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_batch_nobody_waits_for_any_more_is_called_off() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.send)
    calls = [asyncio.create_task(coalescer.call(i)) for i in range(3)]
    while not recorder.batches:
        await asyncio.sleep(0)
    for call in calls:
        call.cancel()
    await asyncio.wait_for(coalescer.aclose(), timeout=5)  # the send was cancelled, not awaited
    assert not recorder.release.is_set()
    assert all(call.cancelled() for call in calls)


async def test_batches_are_bounded_and_close_waits_for_what_was_sent() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.send, limit=4)
    calls = [asyncio.create_task(coalescer.call(i)) for i in range(10)]
    while sum(len(b) for b in recorder.batches) < 10:
        await asyncio.sleep(0)
    assert [len(b) for b in recorder.batches] == [4, 4, 2]
    closing = asyncio.create_task(coalescer.aclose())
    await asyncio.sleep(0)
    assert not closing.done()  # three batches still in flight
    recorder.release.set()
    await closing
    assert [c.result() for c in calls] == [i * 2 for i in range(10)]


async def test_a_batch_whose_callers_gave_up_before_it_left_is_not_sent() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder.send)
    calls = [asyncio.create_task(coalescer.call(i)) for i in range(3)]
    await asyncio.sleep(0)  # each call has joined the batch, not yet sent
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    await coalescer.aclose()
    assert recorder.batches == []
    assert await coalescer.call(1) == 2  # the next batch goes out as usual


async def test_a_lone_call_is_sent_in_the_next_loop_iteration() -> None:
    recorder = Recorder()
    recorder.release.clear()
    coalescer = Coalescer(recorder.send)
    call = asyncio.create_task(coalescer.call(1))
    await asyncio.sleep(0)  # the call joins a batch
    assert recorder.batches == []
    await asyncio.sleep(0)  # the iteration after: the batch is on its way (no extra hop)
    assert recorder.batches == [[1]]
    recorder.release.set()
    assert await call == 2
