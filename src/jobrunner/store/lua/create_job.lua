-- Submit one job in one call: its record, indices, idempotency key and arq's own entry (the
-- job key and the queue member arq's enqueue_job would write), all or nothing.
-- KEYS: 1 job hash, 2 audit list, 3 tenant index, 4 status index, 5 task index,
--       6 tenants set, 7 idempotency key (may be the empty string), 8 expiring zset,
--       9 arq job key, 10 arq queue,
--       11 submitted-jobs counter hash ('plan<TAB>task' -> count, read by /metrics),
--       12 every tenant's index, 13 every tenant's queued index, 14 every tenant's task index,
--       15 the plan's index (the dashboard's cross-tenant filters)
-- ARGV: 1 job id, 2 fields (JSON object), 3 created ms, 4 tenant, 5 payload fingerprint,
--       6 idempotency ttl seconds, 7 expires-at ms ('' for none), 8 audit entry (JSON),
--       9 arq payload (serialised by arq's serialize_job), 10 arq payload ttl ms, 11 arq score
-- Returns {1, id} created, {0, id} same key and payload, {-1, id} same key other payload.
-- A command that fails half-way (a key of the wrong type, say) undoes what this call wrote
-- before the error is returned: Redis itself does not roll a script back.
local id = ARGV[1]
if KEYS[7] ~= '' then
  local existing = redis.call('GET', KEYS[7])
  if existing then
    local prior = cjson.decode(existing)
    if prior['job_id'] == id then
      return {1, id} -- this very call, sent again after its reply was lost
    end
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
local created = tonumber(ARGV[3])
local counter = fields['plan'] .. '\t' .. fields['task']
local done = {}

local function write()
  if redis.call('HSET', KEYS[1], unpack(flat)) == 0 then
    return false -- every field was there already: this call was sent again and has run
  end
  done.record = true
  redis.call('RPUSH', KEYS[2], ARGV[8])
  for _, i in ipairs({3, 4, 5, 12, 13, 14, 15}) do
    redis.call('ZADD', KEYS[i], created, id)
  end
  done.tenant = redis.call('SADD', KEYS[6], ARGV[4]) == 1
  redis.call('HINCRBY', KEYS[11], counter, 1)
  done.counted = true
  if KEYS[7] ~= '' then
    local claim = cjson.encode({job_id = id, fingerprint = ARGV[5]})
    redis.call('SET', KEYS[7], claim, 'EX', tonumber(ARGV[6]))
  end
  if ARGV[7] ~= '' then
    redis.call('ZADD', KEYS[8], tonumber(ARGV[7]), id)
  end
  -- the two writes arq's enqueue_job makes, for a fresh id nobody else can race on
  redis.call('PSETEX', KEYS[9], tonumber(ARGV[10]), ARGV[9])
  redis.call('ZADD', KEYS[10], tonumber(ARGV[11]), id)
  return true
end

local function undo()
  if not done.record then
    return
  end
  redis.pcall('DEL', KEYS[1], KEYS[2], KEYS[9])
  for _, i in ipairs({3, 4, 5, 8, 10, 12, 13, 14, 15}) do
    redis.pcall('ZREM', KEYS[i], id)
  end
  if done.tenant then
    redis.pcall('SREM', KEYS[6], ARGV[4])
  end
  if done.counted then
    redis.pcall('HINCRBY', KEYS[11], counter, -1)
  end
  if KEYS[7] ~= '' then
    redis.pcall('DEL', KEYS[7]) -- it did not exist when this call began
  end
end

local ok, err = pcall(write)
if not ok then
  undo()
  local message = type(err) == 'table' and err['err'] or tostring(err)
  return redis.error_reply('create_job undone: ' .. message)
end
return {1, id}
