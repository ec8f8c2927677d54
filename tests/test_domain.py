"""Pure decisions: lifecycle table, backoff bounds, concurrency shares, progress throttling."""

from __future__ import annotations

import pytest

from jobrunner.context import ProgressThrottle
from jobrunner.domain.capacity import free_slots
from jobrunner.domain.retry import RetryPolicy, backoff_ceiling, next_delay, should_retry
from jobrunner.domain.shares import DEFAULT_SHARES, split_concurrency
from jobrunner.domain.status import ACTIVE, TERMINAL, TRANSITIONS, JobStatus, can_transition


def test_every_status_has_a_row_and_terminal_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    assert ACTIVE.isdisjoint(TERMINAL)
    assert set(JobStatus) == ACTIVE | TERMINAL


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (JobStatus.QUEUED, JobStatus.RUNNING, True),
        (JobStatus.QUEUED, JobStatus.SUCCEEDED, False),
        (JobStatus.RUNNING, JobStatus.RETRYING, True),
        (JobStatus.RETRYING, JobStatus.RUNNING, True),
        (JobStatus.RUNNING, JobStatus.QUEUED, True),
        (JobStatus.SUCCEEDED, JobStatus.RUNNING, False),
        (JobStatus.CANCELLED, JobStatus.QUEUED, False),
        (JobStatus.RETRYING, JobStatus.SUCCEEDED, False),
    ],
)
def test_transitions(current: JobStatus, target: JobStatus, allowed: bool) -> None:
    assert can_transition(current, target) is allowed


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(max_tries=10, base_seconds=1.0, cap_seconds=600.0)
    assert [backoff_ceiling(a, policy) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_ceiling(20, policy) == 600.0
    assert backoff_ceiling(10_000, policy) == 600.0


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    policy = RetryPolicy(base_seconds=2.0, cap_seconds=100.0)
    assert next_delay(3, policy, 0.0) == 0.0
    assert next_delay(3, policy, 0.5) == pytest.approx(4.0)
    assert next_delay(3, policy, 0.999999) == pytest.approx(8.0, rel=1e-5)


def test_should_retry_only_transient_errors_with_tries_left() -> None:
    policy = RetryPolicy(max_tries=3)
    assert should_retry(1, policy, retryable=True)
    assert should_retry(2, policy, retryable=True)
    assert not should_retry(3, policy, retryable=True)
    assert not should_retry(1, policy, retryable=False)


def test_split_concurrency_follows_shares_and_sums_to_total() -> None:
    shares = {"enterprise": 50, "business": 25, "pro": 15, "free": 10}
    slots = split_concurrency(100, ["enterprise", "business", "pro", "free"], shares)
    assert slots == {"enterprise": 50, "business": 25, "pro": 15, "free": 10}
    small = split_concurrency(4, ["enterprise", "business", "pro", "free"], shares)
    assert all(v >= 1 for v in small.values())
    assert sum(small.values()) == 4
    assert split_concurrency(7, ["free"], shares) == {"free": 7}


def test_progress_throttle_writes_at_most_once_per_interval_plus_milestones() -> None:
    now = [0.0]
    throttle = ProgressThrottle(1.0, clock=lambda: now[0])
    assert throttle.offer(1, None) == (True, None)
    now[0] = 0.1
    assert throttle.offer(2, None) == (False, None)
    assert throttle.pending == (2, None)
    assert throttle.offer(26, "quarter") == (True, 25)
    now[0] = 1.2
    assert throttle.offer(27, None) == (True, None)


SHARES = {"enterprise": 10, "business": 5, "pro": 3, "free": 2}


def _free(queue: str, in_use: dict[str, int], backlogged: dict[str, bool]) -> int:
    return free_slots(queue, total=20, guaranteed=SHARES, in_use=in_use, backlogged=backlogged)


def test_a_lone_backlog_borrows_all_but_one_slot_per_other_queue() -> None:
    idle = dict.fromkeys(SHARES, 0)
    assert _free("free", idle, {"free": True}) == 17
    assert _free("free", {**idle, "free": 17}, {"free": True}) == 0
    # an enterprise job arriving now still finds its reserved slot
    assert _free("enterprise", {**idle, "free": 17}, {"free": True}) == 1


def test_when_every_queue_is_busy_each_gets_its_share() -> None:
    busy = dict.fromkeys(SHARES, True)
    in_use = dict.fromkeys(SHARES, 0)
    for queue, share in SHARES.items():
        assert _free(queue, in_use, busy) == share
    # borrowed slots are not taken again once the owner is busy: free waits for its own share
    assert _free("free", {**in_use, "free": 17}, busy) == 0
    assert _free("enterprise", {**in_use, "free": 17}, busy) == 1  # it had its reserve


def test_fewer_slots_than_queues_still_runs_jobs_first_come() -> None:
    guaranteed = split_concurrency(2, ["enterprise", "business", "pro", "free"], DEFAULT_SHARES)
    idle = dict.fromkeys(guaranteed, 0)
    quiet = dict.fromkeys(guaranteed, False)
    assert free_slots("free", total=2, guaranteed=guaranteed, in_use=idle, backlogged=quiet) == 2
    one_busy = {**idle, "pro": 1}
    for queue in guaranteed:
        assert (
            free_slots(queue, total=2, guaranteed=guaranteed, in_use=one_busy, backlogged=quiet)
            == 1
        )
    full = {**idle, "pro": 1, "free": 1}
    assert (
        free_slots("enterprise", total=2, guaranteed=guaranteed, in_use=full, backlogged=quiet) == 0
    )
