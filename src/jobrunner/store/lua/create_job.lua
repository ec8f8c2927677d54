-- Create a job record with its indices, honouring a tenant-scoped idempotency key, atomically.
-- KEYS: 1 job hash, 2 audit list, 3 tenant index, 4 status index, 5 task index,
--       6 tenants set, 7 idempotency key (may be the empty string), 8 expiring zset,
--       9 arq job key, 10 arq queue (both '' unless this call also enqueues: bulk enqueue),
--       11 submitted-jobs counter hash ('plan<TAB>task' -> count, read by /metrics),
--       12 every tenant's index, 13 every tenant's queued index, 14 every tenant's task index,
--       15 the plan's index (the dashboard's cross-tenant filters)
-- ARGV: 1 job id, 2 fields (JSON object), 3 created ms, 4 tenant, 5 payload fingerprint,
--       6 idempotency ttl seconds, 7 expires-at ms ('' for none), 8 audit entry (JSON),
--       9 arq payload (serialised by arq's serialize_job), 10 arq payload ttl ms, 11 arq score
-- Returns {1, id} created, {0, id} same key and payload, {-1, id} same key other payload.
if KEYS[7] ~= '' then
  local existing = redis.call('GET', KEYS[7])
  if existing then
    local prior = cjson.decode(existing)
    if prior['fingerprint'] == ARGV[5] then
      return {0, prior['job_id']}
    end
    return {-1, prior['job_id']}
  end
end
local fields = cjson.decode(ARGV[2])
local flat = {}
for name, value in pairs(fields) do
  flat[#flat + 1] = name
  flat[#flat + 1] = tostring(value)
end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('RPUSH', KEYS[2], ARGV[8])
local created = tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], created, ARGV[1])
redis.call('ZADD', KEYS[4], created, ARGV[1])
redis.call('ZADD', KEYS[5], created, ARGV[1])
for i = 12, 15 do
  redis.call('ZADD', KEYS[i], created, ARGV[1])
end
redis.call('SADD', KEYS[6], ARGV[4])
redis.call('HINCRBY', KEYS[11], fields['plan'] .. '\t' .. fields['task'], 1)
if KEYS[7] ~= '' then
  local claim = cjson.encode({job_id = ARGV[1], fingerprint = ARGV[5]})
  redis.call('SET', KEYS[7], claim, 'EX', tonumber(ARGV[6]))
end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[8], tonumber(ARGV[7]), ARGV[1])
end
if KEYS[9] ~= '' then
  -- the same two writes arq's enqueue_job makes, for a fresh id nobody else can race on
  redis.call('PSETEX', KEYS[9], tonumber(ARGV[10]), ARGV[9])
  redis.call('ZADD', KEYS[10], tonumber(ARGV[11]), ARGV[1])
end
return {1, ARGV[1]}
