"""structlog set-up. Job context (job id, tenant, correlation id) is bound via contextvars.

structlog's events and the standard library's records (arq, uvicorn) get one renderer (console
lines in a terminal, JSON lines otherwise) and one stream; the standard library's through one
handler on the root logger, so every line is written once and in one format.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import TextIO

import structlog


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it instead of adding a second one."""


def wants_json(json: bool | None, stream: TextIO) -> bool:
    """JSON when asked, else unless the stream is a terminal (a person reads it there)."""
    if json is not None:
        return json
    return not (hasattr(stream, "isatty") and stream.isatty())


def _renderer(json: bool | None, stream: TextIO) -> list[structlog.typing.Processor]:
    if wants_json(json, stream):
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    colors = stream.isatty() and "NO_COLOR" not in os.environ
    return [structlog.dev.ConsoleRenderer(colors=colors)]


def configure_logging(
    *,
    json: bool | None = None,
    level: str = "info",
    stream: TextIO | None = None,
    take_over: Iterable[str] = (),
) -> None:
    """Log to ``stream`` (stderr). Other libraries' records show from WARNING up (arq's
    per-job lines repeat ours), everything at level debug. ``take_over`` names loggers whose
    own handlers go (the ``arq`` command installs one for "arq"), so their records are
    written once, by ours."""
    stream = stream or sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    add_level = structlog.processors.add_log_level
    render = _renderer(json, stream)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, add_level, stamp, *render],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = _Handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[add_level, structlog.stdlib.add_logger_name, stamp],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    root.setLevel(quiet)
    logging.getLogger("arq").setLevel(quiet)
    for name in take_over:
        logging.getLogger(name).handlers.clear()
