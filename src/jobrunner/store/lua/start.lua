-- Claim and start up to N due jobs of one arq queue in one call (the record lib is prepended).
-- Per job, as arq's pickup does: the in-progress lease (SET NX, value = worker id); then the
-- queue entry moves to the lease's expiry, so scans skip running jobs (a dead worker's job is
-- due again when its lease lapses) and the record goes to running with its audit line. A job
-- of ours counts its tries in the record (attempts + 1: every start writes attempts), not in
-- arq's try counter, which only a plain arq job (no record) still gets, with its payload read.
-- Jobs that can no longer start (cancelled) get arq's cleanup; a job past its start deadline
-- is expired here. Status events go out only while someone watches the job (the record's
-- 'watchers', see store/events.py).
-- KEYS: 1 arq queue zset
-- ARGV: 1-17 the layout, 18 now ms, 19 max jobs, 20 entries to look at, 21 lease ms,
--       22 worker id, 23 now as an ISO time (audit entries), 24 the worker's task names
--       (',a,b,': a job of another task is returned as 'missing', its record untouched),
--       25 ms a job of another task is left to the workers that have it once it is due
-- Returns {next_due or -1, job, job, ...}; a job is {id, 'run', score, try, '', params,
-- timeout_seconds, max_tries, interruptions, tenant, task, plan, correlation_id,
-- callback_url, priority, created_at, expires_at or ''} (arq's payload is not read: the record
-- holds all it says), {id, 'arq', score, try, payload} (no record: a plain arq job) or
-- {id, 'missing', score, try, task, plan, callback_url} (this worker lacks the task: the
-- lease is held, the record left queued), {id, 'expired', plan, callback_url} or
-- {id, 'corrupt'} (a record whose times or timeout do not parse: reported, left as it is,
-- and taken out of arq's queue).
local queue = KEYS[1]
local now = tonumber(ARGV[18])
local wanted = tonumber(ARGV[19])
local lease = tonumber(ARGV[21])
local worker = ARGV[22]
local at = ARGV[23]
W.on = true -- index, queue and cleanup writes go out per key at the end (lib_writes.lua)

local function drop(id)  -- arq's own cleanup of a job that will not run
  W.del(L.arq_job .. id, L.arq_retry .. id, L.arq_lease .. id)
  W.zrem(queue, id)
end

local function expire(id, key, r)
  write_fields(key, 'expired', now, {finished_at = ARGV[18]})
  reindex(L.status_idx, L.all_status_idx, id, r[2], r[5], r[1], 'expired', now)
  local audit_key = named(L.audit, id)
  redis.call('RPUSH', audit_key, cjson.encode({at = at, event = 'expired', status = 'expired',
    attempt = 0}))
  seal(L, id, key, audit_key, r[2], r[3], r[4], 'expired', now, r[14])
  W.zrem(L.expiring, id)
  if r[18] then publish_status(named(L.events, id), id, 'expired', r[15], r[16], r[6], now) end
  drop(id)
  return {id, 'expired', r[4] or '', r[14]}
end

local function start(id, key, r, try)
  local fields = {started_at = ARGV[18], attempts = try, worker_id = worker}
  if r[1] == 'retrying' then fields['next_attempt_at'] = cjson.null end
  if r[1] == 'running' then  -- the previous worker died mid-attempt (r[12] read just now)
    r[12] = tostring((tonumber(r[12]) or 0) + 1)
    fields['interruptions'] = r[12]
  end
  write_fields(key, 'running', now, fields)
  reindex(L.status_idx, L.all_status_idx, id, r[2], r[5], r[1], 'running', now)
  redis.call('RPUSH', named(L.audit, id), cjson.encode({at = at, event = 'started',
    status = 'running', attempt = try, worker_id = worker}))
  if r[8] then W.zrem(L.expiring, id) end
  if r[18] then publish_status(named(L.events, id), id, 'running', r[15], r[16], try, now) end
end

local function lacks(task)
  return task and not string.find(ARGV[24], ',' .. task .. ',', 1, true)
end

local function pick(id, score)
  local key = named(L.record, id)
  local r = redis.call('HMGET', key, 'status', 'tenant', 'task', 'plan', 'created_at', 'attempts',
    'cancel_requested', 'expires_at', 'params', 'timeout_seconds', 'max_tries', 'interruptions',
    'correlation_id', 'callback_url', 'progress', 'message', 'priority', 'watchers')
  if lacks(r[3]) and now - tonumber(score) < tonumber(ARGV[25]) then
    -- due only just now: left a moment to the workers that have its task (they woke for it)
    W.del(L.arq_lease .. id)
    W.zadd_xx(queue, score, id)
    return nil
  end
  if not r[1] then
    local payload = redis.call('GET', L.arq_job .. id)
    if not payload then drop(id) return nil end
    -- arq's try counter (INCR, with arq's TTL on a fresh one): one SET for a first try
    local try = 1
    if not redis.call('SET', L.arq_retry .. id, 1, 'NX', 'EX', 88400) then
      try = redis.call('INCR', L.arq_retry .. id)
    end
    return {id, 'arq', score, try, payload}
  end
  local try = (tonumber(r[6]) or 0) + 1
  if r[1] == 'queued' and (tonumber(r[6]) or 0) == 0 and r[8] and now > tonumber(r[8])
      and may_move(r[1], 'expired') then
    return expire(id, key, r)
  end
  if not may_move(r[1], 'running') then
    drop(id)
    return nil
  end
  if not tonumber(r[5]) or not tonumber(r[10]) then
    drop(id)
    return {id, 'corrupt'}
  end
  if lacks(r[3]) then
    return {id, 'missing', score, try, r[3], r[4] or '', r[14]}
  end
  start(id, key, r, try)
  return {id, 'run', score, try, '', r[9], r[10], r[11], r[12] or '0', r[2], r[3], r[4],
    r[13], r[14], r[17], r[5], r[8] or ''}
end

local due = redis.call('ZRANGEBYSCORE', queue, '-inf', now, 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[20]))
local out = {-1}
local taken = 0
for i = 1, #due, 2 do
  if taken >= wanted then break end
  local id = due[i]
  if redis.call('SET', L.arq_lease .. id, worker, 'NX', 'PX', lease) then
    W.zadd_xx(queue, now + lease, id)
    local job = pick(id, due[i + 1])
    if job then
      out[#out + 1] = job
      if job[2] == 'run' or job[2] == 'arq' or job[2] == 'missing' then taken = taken + 1 end
    end
  end
end
W.flush() -- before the queue is read again
local upcoming = redis.call('ZRANGEBYSCORE', queue, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #upcoming > 0 then out[1] = upcoming[2] end
return out
