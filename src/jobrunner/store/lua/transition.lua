-- Move a job to a new status if its current status allows it, keeping indices, the audit
-- trail, the result and the live event channel consistent in one step.
-- KEYS: 1 job hash, 2 audit list, 3 events channel, 4 finished zset, 5 expiring zset,
--       6 result key, 7 completed-jobs counter hash ('plan<TAB>status' -> count)
-- ARGV: 1 target status, 2 allowed current statuses (comma separated), 3 fields to set (JSON),
--       4 audit entry (JSON), 5 now ms, 6 terminal? ('1'/'0'), 7 record ttl seconds,
--       8 status index template ('{tenant}' and '{status}' placeholders), 9 job id,
--       10 field to increment by one ('' for none), 11 result JSON ('' for none),
--       12 result ttl seconds, 13 increment only when the current status is this ('' = always),
--       14 every tenant's status index template ('{status}' placeholder)
-- Terminal jobs join the finished zset as 'tenant<TAB>task<TAB>status<TAB>id<TAB>plan' so the
-- cleanup cron can prune their index entries after the record itself has expired.
-- Returns {1, flat hash} moved, {-1, current status} refused, {-2} no such job.
local current = redis.call('HGET', KEYS[1], 'status')
if not current then
  return {-2}
end
local allowed = false
for status in string.gmatch(ARGV[2], '[^,]+') do
  if status == current then allowed = true end
end
if not allowed then
  return {-1, current}
end
local target = ARGV[1]
local fields = cjson.decode(ARGV[3])
local flat = {'status', target, 'updated_at', ARGV[5]}
for name, value in pairs(fields) do
  if value == cjson.null then
    redis.call('HDEL', KEYS[1], name)
  else
    flat[#flat + 1] = name
    flat[#flat + 1] = tostring(value)
  end
end
redis.call('HSET', KEYS[1], unpack(flat))
if ARGV[10] ~= '' and (ARGV[13] == '' or ARGV[13] == current) then
  redis.call('HINCRBY', KEYS[1], ARGV[10], 1)
end
if current ~= target then
  local tenant = redis.call('HGET', KEYS[1], 'tenant')
  local created = redis.call('HGET', KEYS[1], 'created_at')
  local template = string.gsub(ARGV[8], '{tenant}', tenant)
  local old_index = string.gsub(template, '{status}', current)
  local new_index = string.gsub(template, '{status}', target)
  local score = tonumber(created) or tonumber(ARGV[5])
  redis.call('ZREM', old_index, ARGV[9])
  redis.call('ZADD', new_index, score, ARGV[9])
  redis.call('ZREM', (string.gsub(ARGV[14], '{status}', current)), ARGV[9])
  redis.call('ZADD', (string.gsub(ARGV[14], '{status}', target)), score, ARGV[9])
end
redis.call('RPUSH', KEYS[2], ARGV[4])
if ARGV[11] ~= '' then
  redis.call('SET', KEYS[6], ARGV[11], 'EX', tonumber(ARGV[12]))
end
if ARGV[6] == '1' then
  local member = redis.call('HGET', KEYS[1], 'tenant') .. '\t' .. redis.call('HGET', KEYS[1], 'task')
    .. '\t' .. target .. '\t' .. ARGV[9] .. '\t' .. (redis.call('HGET', KEYS[1], 'plan') or '')
  redis.call('ZADD', KEYS[4], tonumber(ARGV[5]), member)
  redis.call('HINCRBY', KEYS[7], (redis.call('HGET', KEYS[1], 'plan') or '') .. '\t' .. target, 1)
  redis.call('ZREM', KEYS[5], ARGV[9])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
elseif target == 'running' then
  redis.call('ZREM', KEYS[5], ARGV[9])
end
local h = redis.call('HGETALL', KEYS[1])
local record = {}
for i = 1, #h, 2 do record[h[i]] = h[i + 1] end
redis.call('PUBLISH', KEYS[3], cjson.encode({
  job_id = ARGV[9], kind = 'status', status = target,
  progress = tonumber(record['progress'] or '0'), message = record['message'],
  attempt = tonumber(record['attempts'] or '0'), at_ms = tonumber(ARGV[5])
}))
return {1, h}
