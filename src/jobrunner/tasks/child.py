"""What a pipeline child process runs: one call at a time from its parent, under caps.

Messages are length-prefixed JSON over a socket pair (see wire.py; between our own
processes, never through Redis). The parent sends a :class:`Call` (as its ``message()``),
or ``"stop"`` while one runs, or ``null`` to end the process; the child answers with
``["progress", fraction, message]`` messages and one reply per call: ``["ok", value]``,
``["error", kind, code, message, details]`` for a TaskError (a function outside the allowed
modules, or a value with no JSON codec, is one: WireError), ``["stopped"]`` after a
cooperative stop, ``["memory", message]`` when the call met its memory cap (the child then
exits: its heap may be in any state), or ``["crash", type, message, traceback]`` for
anything else. Values and details cross through :func:`wire.to_wire`.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobrunner.errors import TaskError, WireError
from jobrunner.tasks.inputs import PipelineStopped
from jobrunner.tasks.wire import HEADER, dumps, from_wire, loads, resolve, to_wire

__all__ = ["STOP", "Call", "child_main", "recv", "send"]

STOP = "stop"
PROGRESS_EVERY = 0.05  # seconds between progress messages (stop requests are read at every call)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Call:
    """``fn(**kwargs)`` (plus ``on_progress=`` when ``progress``) with the job's caps:
    ``memory_bytes`` of address space beyond what the process holds when the call starts,
    ``cpu_seconds`` of CPU time (all threads). ``fn`` is a reference, ``"module:name"``
    (see :func:`wire.function_ref`)."""

    fn: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    memory_bytes: int | None = None
    cpu_seconds: int | None = None
    progress: bool = True

    def message(self) -> dict[str, Any]:
        """As sent: WireError here, in the parent, for kwargs with no JSON codec."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**fields, "kwargs": to_wire(self.kwargs)}


def send(sock: socket.socket, message: Any) -> None:
    sock.sendall(dumps(message))


def recv(sock: socket.socket) -> Any:
    (size,) = HEADER.unpack(_exactly(sock, HEADER.size))
    return loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(min(size - len(buffer), 1 << 20))
        if not chunk:
            raise EOFError("the parent closed the connection")
        buffer += chunk
    return bytes(buffer)


def child_main(sock: socket.socket, stderr_path: str, allowed: tuple[str, ...]) -> None:
    """The child's whole life: set up, say ready, serve calls until told to end. Only
    functions defined in the ``allowed`` modules run."""
    _set_up(stderr_path)
    send(sock, ["ready", os.getpid()])
    while True:
        try:
            message = recv(sock)
        except (EOFError, OSError):
            return
        if message is None:
            return
        if not isinstance(message, dict):
            continue  # a stop that arrived after its call had ended
        reply = _run(sock, message, allowed)
        send(sock, reply)
        if reply[0] == "memory":
            return


def _set_up(stderr_path: str) -> None:
    # Our stderr goes to a file the parent reads when we die: it says why (an allocation
    # failure is printed there by Rust and C++ before they abort).
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    # The parent decides when we stop; a Ctrl-C in the terminal is for it, not for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        # Die with the process that started us (the forkserver, which dies with the worker).
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # glibc gives freed heap back to the kernel at once, and pdfium's text page allocates
        # and frees ~1 MB per page, so every page paid for page faults (measured: FPDFText_
        # LoadPage 700 -> 460 us/page with 16 MB of top pad).
        libc.mallopt(-2, 16 * 1024 * 1024)  # M_TOP_PAD
    _warm_up()


def _warm_up() -> None:
    """Start polars' thread pools and load pdfium now: their address space is then part of
    the baseline each call's memory cap is added to, not charged to the first call."""
    import polars as pl
    import pypdfium2  # noqa: F401

    frame = pl.LazyFrame({"a": ["1", "2"]}).select(pl.col("a").cast(pl.Int64).sum())
    frame.collect()
    frame.collect(engine="streaming")


def _run(sock: socket.socket, message: dict[str, Any], allowed: tuple[str, ...]) -> list[Any]:
    try:
        call = Call(**{**message, "kwargs": from_wire(message["kwargs"])})
        fn = resolve(call.fn, allowed)
    except TaskError as exc:
        return _error(exc)
    except (KeyError, TypeError) as exc:
        return _error(WireError(f"a malformed call: {exc}"))
    kwargs = {**call.kwargs, "on_progress": _Progress(sock)} if call.progress else call.kwargs
    try:
        with _capped(call.memory_bytes, call.cpu_seconds):
            value = fn(**kwargs)
    except PipelineStopped:
        return ["stopped"]
    except TaskError as exc:
        return _error(exc)
    except MemoryError as exc:
        return ["memory", str(exc) or "out of memory"]
    except Exception as exc:
        if "memory allocation" in str(exc) or "capacity overflow" in str(exc):
            return ["memory", str(exc)]
        return ["crash", type(exc).__name__, str(exc), traceback.format_exc()]
    try:
        return ["ok", to_wire(value)]
    except WireError as exc:
        return _error(WireError(f"what {call.fn} returned cannot cross back: {exc.message}"))


def _error(exc: TaskError) -> list[Any]:
    kind = "transient" if exc.retryable else "permanent"
    try:
        details = to_wire(exc.details)
    except WireError as bad:  # the error still arrives, with its code, less its details
        details = {"details_lost": bad.message}
    return ["error", kind, exc.code, exc.message, details]


class _Progress:
    """The ``on_progress`` of a call: throttled messages to the parent, and where a stop
    request is noticed (the call then ends by PipelineStopped)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last = 0.0

    def __call__(self, fraction: float, message: str | None = None) -> None:
        if select.select([self.sock], [], [], 0)[0] and recv(self.sock) == STOP:
            raise PipelineStopped("the parent asked this call to stop")
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY or fraction >= 1.0:
            self.last = now
            send(self.sock, ["progress", fraction, message])


@contextlib.contextmanager
def _capped(memory_bytes: int | None, cpu_seconds: int | None) -> Iterator[None]:
    """RLIMIT_AS at the address space held now plus ``memory_bytes``, RLIMIT_CPU at the CPU
    time used so far plus ``cpu_seconds``; both soft limits, restored afterwards."""
    saved = {kind: resource.getrlimit(kind) for kind in (resource.RLIMIT_AS, resource.RLIMIT_CPU)}
    if memory_bytes is not None:
        _lower(resource.RLIMIT_AS, _address_space() + memory_bytes)
    if cpu_seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _lower(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds)
    try:
        yield
    finally:
        for kind, limits in saved.items():
            resource.setrlimit(kind, limits)


def _lower(kind: int, soft: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(kind, (soft, hard))


def _address_space() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no procfs: the cap is then absolute
        return 0
