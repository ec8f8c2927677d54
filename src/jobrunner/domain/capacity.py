"""Work-conserving shares: how many more jobs a queue may start right now. Pure arithmetic.

Each queue is guaranteed its share of a worker's concurrency. Capacity another queue is not
using may be borrowed, except a reserve kept free for every other queue: one slot while that
queue is quiet, its whole share while it has a backlog. So a lone ``free`` backlog uses almost
the whole worker, yet an ``enterprise`` job arriving later finds a slot at once, and when every
queue is busy each gets exactly its share. With fewer slots than queues there are no reserves.
"""

from __future__ import annotations

from collections.abc import Mapping


def free_slots(
    queue: str,
    *,
    total: int,
    guaranteed: Mapping[str, int],
    in_use: Mapping[str, int],
    backlogged: Mapping[str, bool],
) -> int:
    """Jobs ``queue`` may start now without eating into the reserves of the other queues."""
    mine = in_use.get(queue, 0)
    if len(guaranteed) > total:
        # Fewer slots than queues (`--concurrency 2` over four plans): a reserve for every
        # queue cannot exist, and keeping one anyway would starve them all. First come.
        return max(0, total - sum(in_use.values()))
    held_by_others = 0
    one_slot_owed = 0  # slots still owed so every other queue can start one job at once
    for other, share in guaranteed.items():
        if other == queue:
            continue
        used = in_use.get(other, 0)
        reserve = share if backlogged.get(other, False) else min(share, 1)
        held_by_others += max(reserve, used)
        one_slot_owed += max(0, min(share, 1) - used)
    borrowing = total - held_by_others - mine
    # Below its own share a queue may always use idle slots, whoever borrowed the rest.
    idle = total - sum(in_use.values()) - one_slot_owed
    own = min(guaranteed.get(queue, 0) - mine, idle)
    return max(0, borrowing, own)
