"""Loading the Lua scripts: the record lib is prepended, with the lifecycle table rendered in.

``domain/status.py``'s ``TRANSITIONS`` is the one source of allowed moves; every script that
changes a record's status checks against the copy rendered here, never a list of its own.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobrunner.domain.status import TRANSITIONS
from jobrunner.store.keys import (
    ALL_TENANTS,
    ARQ_ABORT,
    Keys,
    arq_in_progress,
    arq_job,
    arq_result,
    arq_retry,
)

_LIB = "lib_record"
_WRITES = "lib_writes"  # gathered index writes (store/lua/lib_writes.lua), before the record lib
_PLACEHOLDER = "--TRANSITIONS--"


def lua_source(name: str) -> str:
    return resources.files("jobrunner.store").joinpath(f"lua/{name}.lua").read_text()


def transitions_lua() -> str:
    """``TRANSITIONS`` as a Lua table literal: ``{queued = {running = true, ...}, ...}``."""
    rows = []
    for current, targets in sorted(TRANSITIONS.items()):
        inner = ", ".join(f"{t.value} = true" for t in sorted(targets))
        rows.append(f"{current.value} = {{{inner}}}")
    return ", ".join(rows)


def with_writes(source: str) -> str:
    """``source`` with lib_writes.lua's gathered writes (``W``) before it."""
    return lua_source(_WRITES) + "\n" + source


def record_script(redis: Redis, name: str, *, with_transition: bool = False) -> AsyncScript:
    """Register ``lua/<name>.lua`` with the write buffer and the record lib (and the lifecycle
    table) before it;
    ``with_transition``: transition.lua's body too, as ``local function transition(KEYS, ARGV)``
    (ARGV 1-17 stay the layout the lib reads)."""
    lib = with_writes(lua_source(_LIB).replace(_PLACEHOLDER, transitions_lua()))
    middle = ""
    if with_transition:
        middle = f"local function transition(KEYS, ARGV)\n{lua_source('transition')}\nend\n"
    return redis.register_script(lib + "\n" + middle + lua_source(name))


def layout_args(keys: Keys, *, record_ttl: int, result_ttl: int) -> list[str]:
    """ARGV 1-17 of every record script: key templates (``{id}``), TTLs, arq's prefixes and
    the callbacks outbox."""
    return [
        keys.job("{id}"),
        keys.audit("{id}"),
        keys.events("{id}"),
        keys.result("{id}"),
        keys.status_index("{tenant}", "{status}"),
        keys.status_index(ALL_TENANTS, "{status}"),
        keys.finished,
        keys.expiring,
        keys.completed_counts,
        str(record_ttl),
        str(result_ttl),
        arq_job(""),
        arq_retry(""),
        arq_in_progress(""),
        arq_result(""),
        ARQ_ABORT,
        keys.callbacks_due,
    ]
