-- Ask a running job to stop: flag the record and put the job on arq's abort set, so its worker
-- cancels the coroutine (woken at once by the wake message). Waiting jobs are cancelled by a
-- plain transition instead (see JobStore.request_cancel).
-- KEYS: 1 job hash, 2 audit list, 3 arq abort zset, 4 wake channel
-- ARGV: 1 job id, 2 now ms, 3 audit entry (JSON)
-- Returns {2, 'requested'}, {-1, current status} or {-2} (no such job).
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {-2} end
if current ~= 'running' then return {-1, current} end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
redis.call('PUBLISH', KEYS[4], 'abort')
return {2, 'requested'}
