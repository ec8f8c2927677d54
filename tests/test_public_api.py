"""The public surface is exactly what we mean it to be."""

from __future__ import annotations

import jobrunner
import jobrunner.errors as errors


def test_exported_names() -> None:
    assert sorted(jobrunner.__all__) == sorted(
        [
            "AmbiguousJobIdError", "AuditEntry", "ConfigError", "DataDirInUseError",
            "EnqueueRequest", "IdempotencyConflictError",
            "InvalidInputError", "InvalidParamsError", "JobContext", "JobError", "JobEvent",
            "JobNotCancellableError", "JobNotFoundError", "JobNotRetryableError", "JobPage",
            "JobRecord", "JobRunner",
            "JobRunnerError", "JobStatus", "ParamsTooLargeError", "PermanentError",
            "RedisUnavailableError", "Registry", "RetryPolicy", "Settings", "Task", "TaskError",
            "TransientError", "UnknownTaskError", "WaitTimeoutError", "task",
        ]
    )  # fmt: skip
    for name in jobrunner.__all__:
        assert getattr(jobrunner, name) is not None


def test_every_error_has_a_stable_code_and_status() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.JobRunnerError)
    ]
    codes = [c.code for c in classes]
    assert len(classes) >= 15
    assert len(set(codes)) == len(codes), "codes must be unique"
    assert all(400 <= c.http_status < 600 for c in classes)
