-- End a batch of attempts in one call (the record lib is prepended). Per attempt: the record's
-- change (refused unless it still holds this attempt and the lifecycle table allows the move),
-- its audit line, result and status event, and arq's own bookkeeping: a job that ended gets
-- arq's cleanup (queue entry, job key, try counter, lease) and arq's result; a retry goes back
-- to the queue at its retry time; an interrupted attempt at its old score. The record becomes
-- terminal in the same call that removes the lease.
-- ARGV: 1-16 the layout, 17 now ms, 18 worker id, then 11 per attempt: queue, id, attempt
--       ('' for a job that never started: its record holds no attempt of this worker's),
--       kind ('end', 'retry' or 'interrupt': cancelled if asked to, else queued again),
--       target status, fields (JSON, null deletes), audit entry (JSON), result JSON ('' none),
--       arq result ('' none), score (retry time or the old score; '' none), cancel audit entry
-- Returns {{code, status}, ...}: 1 moved to status, -1 refused (current status), -2 no record.
local now = tonumber(ARGV[17])
local worker = ARGV[18]
local PER = 11

local function release(queue, id, a, kind)
  local lease = L.arq_lease .. id
  if kind == 'end' then
    redis.call('DEL', L.arq_job .. id, L.arq_retry .. id, lease)
    redis.call('ZREM', queue, id)
    if ARGV[a + 8] ~= '' then
      redis.call('SET', L.arq_result .. id, ARGV[a + 8], 'PX', L.result_ttl * 1000)
    end
  else
    if ARGV[a + 9] ~= '' then redis.call('ZADD', queue, 'XX', tonumber(ARGV[a + 9]), id) end
    redis.call('DEL', lease)
  end
end

local function refuse(queue, id, a, current)
  if redis.call('GET', L.arq_lease .. id) == worker then redis.call('DEL', L.arq_lease .. id) end
  if is_terminal(current) then  -- it ended elsewhere (a cancel, a reconcile)
    redis.call('DEL', L.arq_job .. id, L.arq_retry .. id)
    redis.call('ZREM', queue, id)
  end
  return {-1, current}
end

local function finish(a)
  local queue, id, target = ARGV[a], ARGV[a + 1], ARGV[a + 4]
  local key = named(L.record, id)
  local r = redis.call('HMGET', key, 'status', 'attempts', 'tenant', 'task', 'plan', 'created_at',
    'cancel_requested', 'progress', 'message')
  local kind = ARGV[a + 3]
  if not r[1] then
    release(queue, id, a, kind)
    return {-2, ''}
  end
  local fields = cjson.decode(ARGV[a + 5])
  local audit = ARGV[a + 6]
  if kind == 'interrupt' and r[7] == '1' then  -- a cancel asked for it
    target, audit, kind = 'cancelled', ARGV[a + 10], 'end'
    fields['finished_at'] = ARGV[17]
  end
  local other_attempt = ARGV[a + 2] ~= '' and r[2] ~= ARGV[a + 2]  -- '' = it never started
  if other_attempt or not may_move(r[1], target) then return refuse(queue, id, a, r[1]) end
  write_fields(key, target, now, fields)
  if kind == 'interrupt' then redis.call('HINCRBY', key, 'interruptions', 1) end
  reindex(L.status_idx, L.all_status_idx, id, r[3], r[6], r[1], target, now)
  local audit_key = named(L.audit, id)
  redis.call('RPUSH', audit_key, audit)
  if ARGV[a + 7] ~= '' then
    redis.call('SET', named(L.result, id), ARGV[a + 7], 'EX', L.result_ttl)
  end
  if kind == 'end' then
    seal(L, id, key, audit_key, r[3], r[4], r[5], target, now)
    if r[7] == '1' then redis.call('ZREM', L.arq_abort, id) end
  end
  local progress, message = r[8], r[9]
  if fields['progress'] then progress = fields['progress'] end
  if fields['message'] and fields['message'] ~= cjson.null then message = fields['message'] end
  publish_status(named(L.events, id), id, target, progress, message, ARGV[a + 2], now)
  release(queue, id, a, kind)
  return {1, target}
end

local out = {}
for a = 19, #ARGV, PER do
  out[#out + 1] = finish(a)
end
return out
