-- Cancel a job: a waiting one is cancelled at once and taken out of arq's queue; a running one
-- is flagged and put on arq's abort set so its worker cancels the coroutine.
-- KEYS: 1 job hash, 2 audit list, 3 events channel, 4 finished zset, 5 expiring zset,
--       6 arq abort zset, 7 wake channel
-- ARGV: 1 job id, 2 now ms, 3 record ttl, 4 status index template, 5 arq job key,
--       6 audit entry for a waiting job (JSON), 7 audit entry for a running job (JSON)
-- Returns {1, 'cancelled'}, {2, 'requested'}, {-1, current status} or {-2}.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {-2} end
if current == 'queued' or current == 'retrying' then
  local queue = redis.call('HGET', KEYS[1], 'queue')
  redis.call('ZREM', queue, ARGV[1])
  redis.call('DEL', ARGV[5])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2],
    'updated_at', ARGV[2], 'cancel_requested', '1')
  redis.call('HDEL', KEYS[1], 'next_attempt_at')
  local tenant = redis.call('HGET', KEYS[1], 'tenant')
  local created = tonumber(redis.call('HGET', KEYS[1], 'created_at'))
  local template = string.gsub(ARGV[4], '{tenant}', tenant)
  redis.call('ZREM', (string.gsub(template, '{status}', current)), ARGV[1])
  redis.call('ZADD', (string.gsub(template, '{status}', 'cancelled')), created, ARGV[1])
  redis.call('RPUSH', KEYS[2], ARGV[6])
  local task = redis.call('HGET', KEYS[1], 'task')
  redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), tenant .. '\t' .. task .. '\tcancelled\t' .. ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
  redis.call('PUBLISH', KEYS[3], cjson.encode({
    job_id = ARGV[1], kind = 'status', status = 'cancelled',
    progress = tonumber(redis.call('HGET', KEYS[1], 'progress') or '0'),
    attempt = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0'),
    at_ms = tonumber(ARGV[2])
  }))
  return {1, 'cancelled'}
end
if current == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[2])
  redis.call('RPUSH', KEYS[2], ARGV[7])
  redis.call('ZADD', KEYS[6], tonumber(ARGV[2]), ARGV[1])
  redis.call('PUBLISH', KEYS[7], 'abort')
  return {2, 'requested'}
end
return {-1, current}
