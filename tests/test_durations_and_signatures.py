"""Pure pieces of metrics and webhooks: the duration histogram and the signature scheme."""

from __future__ import annotations

import hashlib
import hmac

from jobrunner.domain.durations import (
    DURATION_BUCKETS,
    DurationRecorder,
    TaskDurations,
    bucket_of,
    cumulative,
)
from jobrunner.domain.webhooks import signature_header, verify_signature


def test_observations_land_in_the_smallest_bucket_that_holds_them() -> None:
    assert bucket_of(0.0) == DURATION_BUCKETS[0]
    assert bucket_of(0.01) == 0.01  # bounds are inclusive, as Prometheus's "le" says
    assert bucket_of(0.0100001) == 0.025
    assert bucket_of(DURATION_BUCKETS[-1] + 1) == float("inf")


def test_recorder_drains_and_restores_what_a_failed_flush_did_not_write() -> None:
    recorder = DurationRecorder()
    recorder.observe("a", 0.2)
    recorder.observe("a", 3.0)
    recorder.observe("b", -1.0)  # a clock step back counts as zero, not negative
    drained = recorder.drain()
    assert not recorder
    assert drained["a"].count == 2
    assert drained["a"].buckets == {0.25: 1, 5.0: 1}
    assert drained["a"].total_seconds == 3.2
    assert drained["b"].buckets == {DURATION_BUCKETS[0]: 1}
    recorder.observe("a", 0.2)
    recorder.restore(drained)
    again = recorder.drain()
    assert again["a"].count == 3
    assert again["a"].buckets == {0.25: 2, 5.0: 1}
    assert again["b"].count == 1


def test_cumulative_buckets_end_with_the_total() -> None:
    entry = TaskDurations(buckets={0.25: 2, 5.0: 1, float("inf"): 1}, total_seconds=99, count=4)
    pairs = dict(cumulative(entry.buckets, entry.count))
    assert pairs["0.1"] == 0
    assert pairs["0.25"] == 2
    assert pairs["2.5"] == 2
    assert pairs["5.0"] == 3
    assert pairs["21600.0"] == 3
    assert pairs["+Inf"] == 4
    counts = [n for _, n in cumulative(entry.buckets, entry.count)]
    assert counts == sorted(counts)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"id":"x","status":"succeeded"}'
    header = signature_header("s3cret", body, 1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_verification_rejects_other_bodies_secrets_and_old_timestamps() -> None:
    body = b'{"id":"x"}'
    header = signature_header("s3cret", body, 1_700_000_000)
    assert verify_signature("s3cret", body, header, now=1_700_000_010)
    assert not verify_signature("s3cret", body + b" ", header, now=1_700_000_010)
    assert not verify_signature("other", body, header, now=1_700_000_010)
    assert not verify_signature("s3cret", body, header, now=1_700_000_000 + 301)  # a replay
    assert not verify_signature("s3cret", body, "v1=abc", now=1_700_000_000)
    assert not verify_signature("s3cret", body, "garbage", now=1_700_000_000)
