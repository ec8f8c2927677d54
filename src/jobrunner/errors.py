"""The one exception tree of jobrunner.

Every error carries a stable ``code`` (what clients and failed job records show) and an
``http_status`` (what the API answers with). The tree::

    JobRunnerError
    ├── ConfigError                  bad settings or ruleset files; raised at start-up
    │   └── DataDirInUseError        another process runs the embedded Redis of this data dir
    ├── RedisUnavailableError        Redis cannot be reached within the timeout
    ├── RecordCorruptError           a stored record that fails to decode
    ├── NotFoundError
    │   ├── JobNotFoundError         unknown or malformed job id
    │   ├── UnknownTaskError         task name not registered (lists the known ones)
    │   ├── TaskNotRegisteredError   the worker that pulled a job has not its task (nor has
    │   │                            another live worker on the queue); ends on the record
    │   └── BlobNotFoundError
    ├── BlobTooLargeError            a streamed blob passed its size limit
    ├── InvalidInputError
    │   ├── InvalidParamsError       params fail the task's model (each field's path)
    │   ├── ParamsTooLargeError
    │   ├── InvalidOverrideError     defer/ttl/timeout/max_tries beyond their limits
    │   └── AmbiguousJobIdError      a short job id that is too short or matches several jobs
    ├── ConflictError
    │   ├── IdempotencyConflictError same key, different payload
    │   ├── JobNotCancellableError   job already finished
    │   └── JobNotRetryableError     only failed, cancelled or expired jobs are retried
    ├── WaitTimeoutError             wait() gave up before the job finished
    └── TaskError                    raised by task code; ends up on the job record
        ├── PermanentError           fails the job at once
        │   └── WireError            a value or function that may not cross to a pipeline
        │                            child process (JSON only; allowed functions only)
        └── TransientError           retried with backoff while tries remain
            └── BlobStoreUnavailableError  the blob store (a bucket) cannot be reached or
                                           refused the operation; says why
"""

from __future__ import annotations

from typing import Any, ClassVar


class JobRunnerError(Exception):
    """Base of every error jobrunner raises on purpose."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


class ConfigError(JobRunnerError):
    code = "config_error"


class DataDirInUseError(ConfigError):
    code = "data_dir_in_use"


class RedisUnavailableError(JobRunnerError):
    code = "redis_unavailable"
    http_status = 503


class RecordCorruptError(JobRunnerError):
    code = "record_corrupt"


class NotFoundError(JobRunnerError):
    code = "not_found"
    http_status = 404


class JobNotFoundError(NotFoundError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}", job_id=job_id)


class UnknownTaskError(NotFoundError):
    code = "unknown_task"

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "(none registered)"
        super().__init__(f"unknown task {name!r}; known tasks: {listing}", task=name, known=known)


class TaskNotRegisteredError(NotFoundError):
    code = "task_not_registered"


class BlobNotFoundError(NotFoundError):
    code = "blob_not_found"


class BlobTooLargeError(JobRunnerError):
    code = "blob_too_large"
    http_status = 413


class InvalidInputError(JobRunnerError):
    code = "invalid_input"
    http_status = 422


class InvalidParamsError(InvalidInputError):
    code = "invalid_params"

    def __init__(self, task: str, errors: list[dict[str, Any]]) -> None:
        paths = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
        super().__init__(f"invalid params for {task}: {paths}", task=task, errors=errors)


class ParamsTooLargeError(InvalidInputError):
    code = "params_too_large"
    http_status = 413


class InvalidOverrideError(InvalidInputError):
    code = "invalid_override"


class AmbiguousJobIdError(InvalidInputError):
    code = "ambiguous_job_id"


class ConflictError(JobRunnerError):
    code = "conflict"
    http_status = 409


class IdempotencyConflictError(ConflictError):
    code = "idempotency_conflict"


class JobNotCancellableError(ConflictError):
    code = "job_not_cancellable"


class JobNotRetryableError(ConflictError):
    code = "job_not_retryable"


class WaitTimeoutError(JobRunnerError):
    code = "wait_timeout"
    http_status = 504


class TaskError(JobRunnerError):
    """Raised by task code. ``code`` is per instance so pipelines can name their failure."""

    code = "task_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        if code is not None:
            self.code = code  # type: ignore[misc]


class PermanentError(TaskError):
    """The input or the world is wrong in a way another try will not fix."""

    code = "permanent_error"
    http_status = 422


class WireError(PermanentError):
    """A value with no JSON codec, or a function a pipeline child refuses to run
    (``pipeline_call_refused``): the same call would meet it again."""

    code = "pipeline_value_unsupported"


class TransientError(TaskError):
    """Worth another try: a timeout, a flaky dependency."""

    code = "transient_error"
    http_status = 503
    retryable = True


class BlobStoreUnavailableError(TransientError):
    """The blob store cannot be reached or refused an operation (network, credentials, a missing
    bucket). Outside a task it is a 503; inside one it is retried like any transient error."""

    code = "blob_store_unavailable"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
