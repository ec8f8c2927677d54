-- Cancel a job in one step (the record lib, with the lifecycle table, is prepended). A waiting
-- job is cancelled at once and leaves arq's queue; a running one is flagged and put on arq's
-- abort set, and the wake channel's 'abort' message makes its worker cancel the coroutine.
-- ARGV: 1-17 the layout, 18 job id, 19 now ms, 20 fields when cancelled now (JSON),
--       21 audit entry 'cancelled' (JSON), 22 audit entry 'cancel_requested' (JSON),
--       23 wake channel
-- Returns {1, 'cancelled'}, {2, 'requested'}, {-1, current status} or {-2} (no such job).
local id, now = ARGV[18], tonumber(ARGV[19])
local key = named(L.record, id)
local r = redis.call('HMGET', key, 'status', 'tenant', 'task', 'plan', 'created_at', 'progress',
  'message', 'attempts', 'queue', 'callback_url')
local current = r[1]
if not current then return {-2} end
if not may_move(current, 'cancelled') then return {-1, current} end
if current == 'running' then
  redis.call('HSET', key, 'cancel_requested', '1', 'updated_at', ARGV[19])
  redis.call('RPUSH', named(L.audit, id), ARGV[22])
  redis.call('ZADD', L.arq_abort, now, id)
  redis.call('PUBLISH', ARGV[23], 'abort')
  return {2, 'requested'}
end
write_fields(key, 'cancelled', now, cjson.decode(ARGV[20]))
reindex(L.status_idx, L.all_status_idx, id, r[2], r[5], current, 'cancelled', now)
local audit_key = named(L.audit, id)
redis.call('RPUSH', audit_key, ARGV[21])
seal(L, id, key, audit_key, r[2], r[3], r[4], 'cancelled', now, r[10])
redis.call('ZREM', L.expiring, id)
publish_status(named(L.events, id), id, 'cancelled', r[6], r[7], r[8], now)
-- arq's side: the job will not run (a worker that claims it meanwhile finds it cancelled)
if r[9] then redis.call('ZREM', r[9], id) end
redis.call('DEL', L.arq_job .. id, L.arq_retry .. id)
return {1, 'cancelled'}
