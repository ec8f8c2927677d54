"""lib_writes.lua gathers a batch script's zset, DEL and counter writes into one command per key.
Whatever it sends must leave Redis exactly as the same writes sent one by one would."""

from __future__ import annotations

import json
import random
from typing import Any

from redis.asyncio import Redis

from jobrunner.runtime import JobRunner
from jobrunner.store.scripts import with_writes

# Runs ARGV[1]'s operations on keys under ARGV[2]; ARGV[3] '1' gathers them (W.on).
_RUN = """
W.on = ARGV[3] == '1'
local base = ARGV[2]
for _, op in ipairs(cjson.decode(ARGV[1])) do
  local kind, key = op[1], base .. op[2]
  if kind == 'zadd' then W.zadd(key, op[3], op[4])
  elseif kind == 'zadd_xx' then W.zadd_xx(key, op[3], op[4])
  elseif kind == 'zrem' then W.zrem(key, op[4])
  elseif kind == 'del' then W.del(key)
  elseif kind == 'set' then redis.call('SET', key, 'x')
  elseif kind == 'hincrby' then W.hincrby(key, op[4], op[3])
  end
end
W.flush()
return 1
"""


def _ops(rnd: random.Random, count: int) -> list[list[Any]]:
    """Random writes over few keys and members, so members meet each other's changes."""
    ops: list[list[Any]] = []
    for _ in range(count):
        kind = rnd.choice(["zadd", "zadd", "zadd_xx", "zrem", "del", "hincrby"])
        member = f"m{rnd.randrange(6)}"
        if kind == "del":
            ops.append(["del", f"s{rnd.randrange(4)}", 0, ""])
        elif kind == "hincrby":
            ops.append(["hincrby", "h", rnd.randrange(-2, 4), member])
        else:
            ops.append([kind, f"z{rnd.randrange(3)}", rnd.randrange(100), member])
    # string keys for the DELs to find
    return [["set", f"s{i}", 0, ""] for i in range(4)] + ops


async def _state(redis: Redis, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(3):
        out[f"z{i}"] = await redis.zrange(base + f"z{i}", 0, -1, withscores=True)
    for i in range(4):
        out[f"s{i}"] = await redis.exists(base + f"s{i}")
    counts = await redis.hgetall(base + "h")
    out["h"] = {k: v for k, v in counts.items() if int(v) != 0}
    return out


async def test_gathered_writes_leave_what_writes_one_by_one_leave(
    runner: JobRunner, key_prefix: str
) -> None:
    script = runner.redis.register_script(with_writes(_RUN))
    rnd = random.Random(7)
    for round_ in range(60):
        ops = json.dumps(_ops(rnd, rnd.randrange(1, 40)))
        at_once, gathered = f"{key_prefix}:w{round_}:a:", f"{key_prefix}:w{round_}:b:"
        await script(keys=[], args=[ops, at_once, "0"])
        await script(keys=[], args=[ops, gathered, "1"])
        assert await _state(runner.redis, gathered) == await _state(runner.redis, at_once), ops


async def test_a_zadd_xx_after_a_removal_leaves_the_member_out(
    runner: JobRunner, key_prefix: str
) -> None:
    script = runner.redis.register_script(with_writes(_RUN))
    base = f"{key_prefix}:xx:"
    await runner.redis.zadd(base + "z0", {"m": 1})
    ops = [["zrem", "z0", 0, "m"], ["zadd_xx", "z0", 5, "m"]]
    await script(keys=[], args=[json.dumps(ops), base, "1"])
    assert await runner.redis.zscore(base + "z0", "m") is None


async def test_more_members_than_one_command_takes(runner: JobRunner, key_prefix: str) -> None:
    """Past the chunk size (1000 members) the writes go out in several commands, all of them."""
    script = runner.redis.register_script(with_writes(_RUN))
    base = f"{key_prefix}:big:"
    ops = [["zadd", "z0", i, f"m{i}"] for i in range(2500)]
    ops += [["zrem", "z0", 0, f"m{i}"] for i in range(0, 2500, 2)]
    await script(keys=[], args=[json.dumps(ops), base, "1"])
    assert await runner.redis.zcard(base + "z0") == 1250
    assert await runner.redis.zscore(base + "z0", "m2499") == 2499
