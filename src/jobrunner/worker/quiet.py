"""arq logs every failed job with its traceback; ours are already logged, once, with a code."""

from __future__ import annotations

import logging

from jobrunner.worker.outcomes import JobFailed


class _SkipRecordedFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # JobFailed reaches arq after outcomes.fail logged "job failed" with the error's code
        # (and, for an unexpected exception, execution logged its traceback before that).
        return not (record.exc_info and isinstance(record.exc_info[1], JobFailed))


_FILTER = _SkipRecordedFailures()


def quiet_recorded_failures() -> None:
    """Drop arq's traceback for a job that jobrunner failed on purpose (idempotent)."""
    logging.getLogger("arq.worker").addFilter(_FILTER)
