"""jobrunner: an asyncio-native job runtime on arq and Redis."""

from jobrunner.context import JobContext
from jobrunner.domain.models import AuditEntry, JobError, JobEvent, JobPage, JobRecord
from jobrunner.domain.retry import RetryPolicy
from jobrunner.domain.status import JobStatus
from jobrunner.errors import (
    AmbiguousJobIdError,
    ConfigError,
    DataDirInUseError,
    IdempotencyConflictError,
    InvalidInputError,
    InvalidParamsError,
    JobNotCancellableError,
    JobNotFoundError,
    JobNotRetryableError,
    JobRunnerError,
    ParamsTooLargeError,
    PermanentError,
    RedisUnavailableError,
    TaskError,
    TransientError,
    UnknownTaskError,
    WaitTimeoutError,
)
from jobrunner.registry import Registry, Task, task
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.submission import EnqueueRequest

__all__ = [
    "AmbiguousJobIdError",
    "AuditEntry",
    "ConfigError",
    "DataDirInUseError",
    "EnqueueRequest",
    "IdempotencyConflictError",
    "InvalidInputError",
    "InvalidParamsError",
    "JobContext",
    "JobError",
    "JobEvent",
    "JobNotCancellableError",
    "JobNotFoundError",
    "JobNotRetryableError",
    "JobPage",
    "JobRecord",
    "JobRunner",
    "JobRunnerError",
    "JobStatus",
    "ParamsTooLargeError",
    "PermanentError",
    "RedisUnavailableError",
    "Registry",
    "RetryPolicy",
    "Settings",
    "Task",
    "TaskError",
    "TransientError",
    "UnknownTaskError",
    "WaitTimeoutError",
    "task",
]
