-- End a batch of attempts in one call (the record lib is prepended). Per attempt: the record's
-- change (refused unless it still holds this attempt and the lifecycle table allows the move),
-- its audit line, result and status event, and arq's own bookkeeping: a job that ended gets
-- arq's cleanup (queue entry, job key, try counter, lease) and arq's result; a retry goes back
-- to the queue at its retry time; an interrupted attempt at its old score. The record becomes
-- terminal in the same call that removes the lease.
-- ARGV: 1-17 the layout, 18 now ms, 19 worker id, 20 the attempts (one JSON array; redis-py
--       packs one argument far faster than eleven per attempt), each an object:
--       q queue, id, a attempt ('' for a job that never started: its record holds no attempt
--       of this worker's), k kind ('end', 'retry' or 'interrupt': cancelled if asked to, else
--       queued again), t target status, f fields (null deletes), au audit entry (JSON text),
--       r result JSON, ar arq result, s score (retry time or the old score), ca cancel audit
-- Returns {{code, status}, ...}: 1 moved to status, -1 refused (current status), -2 no record.
local now = tonumber(ARGV[18])
local worker = ARGV[19]
W.on = true -- index, queue and cleanup writes go out per key at the end (lib_writes.lua)

local function release(e, kind)
  local lease = L.arq_lease .. e.id
  if kind == 'end' then
    W.del(L.arq_job .. e.id, L.arq_retry .. e.id, lease)
    W.zrem(e.q, e.id)
    if e.ar then redis.call('SET', L.arq_result .. e.id, e.ar, 'PX', L.result_ttl * 1000) end
  else
    if e.s then W.zadd_xx(e.q, e.s, e.id) end
    W.del(lease)
  end
end

local function refuse(e, current)
  local lease = L.arq_lease .. e.id
  if redis.call('GET', lease) == worker then W.del(lease) end
  if is_terminal(current) then  -- it ended elsewhere (a cancel, a reconcile)
    W.del(L.arq_job .. e.id, L.arq_retry .. e.id)
    W.zrem(e.q, e.id)
  end
  return {-1, current}
end

local function finish(e)
  local id, target, kind = e.id, e.t, e.k
  local key = named(L.record, id)
  local r = redis.call('HMGET', key, 'status', 'attempts', 'tenant', 'task', 'plan', 'created_at',
    'cancel_requested', 'progress', 'message', 'error', 'next_attempt_at', 'watchers',
    'callback_url')
  if not r[1] then
    release(e, kind)
    return {-2, ''}
  end
  local fields, audit = e.f, e.au
  if kind == 'interrupt' and r[7] == '1' then  -- a cancel asked for it
    target, audit, kind = 'cancelled', e.ca, 'end'
    fields['finished_at'] = ARGV[18]
  end
  local other_attempt = e.a ~= '' and r[2] ~= e.a  -- '' = it never started here
  if other_attempt or not may_move(r[1], target) then return refuse(e, r[1]) end
  -- nothing to delete where the record has no value
  for i, name in pairs({[9] = 'message', [10] = 'error', [11] = 'next_attempt_at'}) do
    if fields[name] == cjson.null and not r[i] then fields[name] = nil end
  end
  write_fields(key, target, now, fields)
  if kind == 'interrupt' then redis.call('HINCRBY', key, 'interruptions', 1) end
  reindex(L.status_idx, L.all_status_idx, id, r[3], r[6], r[1], target, now)
  local audit_key = named(L.audit, id)
  redis.call('RPUSH', audit_key, audit)
  if e.r then redis.call('SET', named(L.result, id), e.r, 'EX', L.result_ttl) end
  if kind == 'end' then
    seal(L, id, key, audit_key, r[3], r[4], r[5], target, now, r[13])
    if r[7] == '1' then W.zrem(L.arq_abort, id) end
  end
  local progress, message = fields['progress'] or r[8], r[9]
  if fields['message'] ~= nil then
    message = fields['message'] ~= cjson.null and fields['message'] or nil
  end
  if r[12] then  -- someone watches it (store/events.py)
    publish_status(named(L.events, id), id, target, progress, message, e.a, now)
  end
  release(e, kind)
  return {1, target}
end

local out = {}
for _, e in ipairs(cjson.decode(ARGV[20])) do
  out[#out + 1] = finish(e)
end
W.flush()
return out
