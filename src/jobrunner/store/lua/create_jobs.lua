-- Submit a batch of jobs in one call: each job's record, indices, idempotency key and arq's own
-- entry (the job key and the queue member arq's enqueue_job would write), all or nothing.
-- lib_writes.lua is prepended: the index, queue and counter writes of the whole batch go out
-- per key at the end (ten jobs of one tenant cost one ZADD per index, not ten).
-- ARGV[1]: a JSON array with one object per job (one argument packs far faster than many in
--       redis-py), every value a string: id, fields (the record's, an object), created (ms),
--       tenant, fingerprint (of the payload), idem_ttl (s), expires (ms, '' for none), audit
--       (JSON), payload (arq's, as its serialize_job writes it), payload_ttl (ms), score (arq's),
--       tenant_known ('1': this client added the tenant to the set already; the SADD is skipped,
--       as nothing ever takes a tenant out of it), and k, the job's keys:
--       1 job hash, 2 audit list, 3 tenant index, 4 status index, 5 task index, 6 tenants set,
--       7 idempotency key (may be the empty string), 8 expiring zset, 9 arq job key,
--       10 arq queue, 11 submitted-jobs counter hash ('plan<TAB>task' -> count, read by
--       /metrics), 12 every tenant's index, 13 every tenant's queued index, 14 every tenant's
--       task index, 15 the plan's index (the dashboard's cross-tenant filters)
-- Returns one {code, id} per job: {1, id} created, {0, id} same key and payload, {-1, id} same
-- key other payload.
-- A command that fails half-way (a key of the wrong type, say) undoes what this call wrote for
-- every job of the batch before the error is returned: Redis itself does not roll a script
-- back. The caller then sends the jobs one by one, so each gets its own outcome.
W.on = true
local jobs = cjson.decode(ARGV[1])
local written = {} -- {job, tenant added?} for the undo

-- The same call sent again (redis-py resends after a lost reply, or after a restart) must
-- change nothing: by then a worker may have run the job and the record moved on.
local function replayed(a, K)
  if K[7] ~= '' then
    local existing = redis.call('GET', K[7])
    if existing then
      local prior = cjson.decode(existing)
      if prior['job_id'] == a['id'] then
        return {1, a['id']} -- this very call, run already (the key was written with the record)
      end
      if prior['fingerprint'] == a['fingerprint'] then
        return {0, prior['job_id']}
      end
      return {-1, prior['job_id']}
    end
  end
  -- The audit entry is written first: a list that was there already means this call has run
  -- before (a fresh id's list is written by this script only), so the copy is taken back.
  if redis.call('RPUSH', K[2], a['audit']) > 1 then
    redis.call('RPOP', K[2])
    return {1, a['id']}
  end
  return nil
end

local function write(a, K, w)
  local id, fields = a['id'], a['fields']
  local flat = {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = tostring(value)
  end
  local created = tonumber(a['created'])
  redis.call('HSET', K[1], unpack(flat))
  for _, i in ipairs({3, 4, 5, 12, 13, 14, 15}) do
    W.zadd(K[i], created, id)
  end
  if a['tenant_known'] ~= '1' then
    w.tenant = redis.call('SADD', K[6], a['tenant']) == 1
  end
  W.hincrby(K[11], fields['plan'] .. '\t' .. fields['task'], 1)
  if K[7] ~= '' then
    local claim = cjson.encode({job_id = id, fingerprint = a['fingerprint']})
    redis.call('SET', K[7], claim, 'EX', tonumber(a['idem_ttl']))
  end
  if a['expires'] ~= '' then
    W.zadd(K[8], tonumber(a['expires']), id)
  end
  -- the two writes arq's enqueue_job makes, for a fresh id nobody else can race on
  redis.call('PSETEX', K[9], tonumber(a['payload_ttl']), a['payload'])
  W.zadd(K[10], tonumber(a['score']), id)
end

-- Everything a written job may have left; counters need no undo: they go out last, so an
-- error means they were not written.
local function undo(a, K, w)
  redis.pcall('DEL', K[1], K[2], K[9])
  for _, i in ipairs({3, 4, 5, 8, 10, 12, 13, 14, 15}) do
    redis.pcall('ZREM', K[i], a['id'])
  end
  if w.tenant then
    redis.pcall('SREM', K[6], a['tenant'])
  end
  if K[7] ~= '' then
    redis.pcall('DEL', K[7]) -- it did not exist when this call began
  end
end

local out = {}
local function run()
  for n, a in ipairs(jobs) do
    local K = a['k']
    local again = replayed(a, K)
    if again then
      out[n] = again
    else
      local w = {job = a}
      written[#written + 1] = w
      write(a, K, w)
      out[n] = {1, a['id']}
    end
  end
  W.flush()
end

local ok, err = pcall(run)
if not ok then
  W.discard()
  for _, w in ipairs(written) do undo(w.job, w.job['k'], w) end
  local message = type(err) == 'table' and err['err'] or tostring(err)
  return redis.error_reply('create_job undone: ' .. message)
end
return out
