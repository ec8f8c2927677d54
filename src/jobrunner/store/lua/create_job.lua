-- Submit one job in one call: its record, indices, idempotency key and arq's own entry (the
-- job key and the queue member arq's enqueue_job would write), all or nothing.
-- KEYS: 1 job hash, 2 audit list, 3 tenant index, 4 status index, 5 task index,
--       6 tenants set, 7 idempotency key (may be the empty string), 8 expiring zset,
--       9 arq job key, 10 arq queue,
--       11 submitted-jobs counter hash ('plan<TAB>task' -> count, read by /metrics),
--       12 every tenant's index, 13 every tenant's queued index, 14 every tenant's task index,
--       15 the plan's index (the dashboard's cross-tenant filters)
-- ARGV[1]: one JSON object (one argument packs far faster than eleven in redis-py), every
--       value a string: id, fields (the record's, an object), created (ms), tenant,
--       fingerprint (of the payload), idem_ttl (s), expires (ms, '' for none), audit (JSON),
--       payload (arq's, as its serialize_job writes it), payload_ttl (ms), score (arq's),
--       tenant_known ('1': this client added the tenant to the set already; the SADD is skipped,
--       as nothing ever takes a tenant out of it)
-- Returns {1, id} created, {0, id} same key and payload, {-1, id} same key other payload.
-- A command that fails half-way (a key of the wrong type, say) undoes what this call wrote
-- before the error is returned: Redis itself does not roll a script back.
local a = cjson.decode(ARGV[1])
local id = a['id']
local fields = a['fields']
local flat = {}
for name, value in pairs(fields) do
  flat[#flat + 1] = name
  flat[#flat + 1] = tostring(value)
end
local created = tonumber(a['created'])
local counter = fields['plan'] .. '\t' .. fields['task']
-- The same call sent again (redis-py resends after a lost reply, or after a restart) must
-- change nothing: by then a worker may have run the job and the record moved on.
if KEYS[7] ~= '' then
  local existing = redis.call('GET', KEYS[7])
  if existing then
    local prior = cjson.decode(existing)
    if prior['job_id'] == id then
      return {1, id} -- this very call, run already (the key was written with the record)
    end
    if prior['fingerprint'] == a['fingerprint'] then
      return {0, prior['job_id']}
    end
    return {-1, prior['job_id']}
  end
end
-- The audit entry is written first: a list that was there already means this call has run
-- before (a fresh id's list is written by this script only), so the copy is taken back.
if redis.call('RPUSH', KEYS[2], a['audit']) > 1 then
  redis.call('RPOP', KEYS[2])
  return {1, id}
end
local done = {}

local function write()
  redis.call('HSET', KEYS[1], unpack(flat))
  for _, i in ipairs({3, 4, 5, 12, 13, 14, 15}) do
    redis.call('ZADD', KEYS[i], created, id)
  end
  if a['tenant_known'] ~= '1' then
    done.tenant = redis.call('SADD', KEYS[6], a['tenant']) == 1
  end
  redis.call('HINCRBY', KEYS[11], counter, 1)
  done.counted = true
  if KEYS[7] ~= '' then
    local claim = cjson.encode({job_id = id, fingerprint = a['fingerprint']})
    redis.call('SET', KEYS[7], claim, 'EX', tonumber(a['idem_ttl']))
  end
  if a['expires'] ~= '' then
    redis.call('ZADD', KEYS[8], tonumber(a['expires']), id)
  end
  -- the two writes arq's enqueue_job makes, for a fresh id nobody else can race on
  redis.call('PSETEX', KEYS[9], tonumber(a['payload_ttl']), a['payload'])
  redis.call('ZADD', KEYS[10], tonumber(a['score']), id)
end

local function undo()
  redis.pcall('DEL', KEYS[1], KEYS[2], KEYS[9])
  for _, i in ipairs({3, 4, 5, 8, 10, 12, 13, 14, 15}) do
    redis.pcall('ZREM', KEYS[i], id)
  end
  if done.tenant then
    redis.pcall('SREM', KEYS[6], a['tenant'])
  end
  if done.counted and redis.pcall('HINCRBY', KEYS[11], counter, -1) == 0 then
    redis.pcall('HDEL', KEYS[11], counter)
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
