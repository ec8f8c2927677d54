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
--       task index, 15 the plan's index (the dashboard's cross-tenant filters), 16 the tenant's
--       running index, 17 the idle workers of the job's queue, 18 arq's lease key of the job;
--       and ready ('1': due now)
-- ARGV[2] now ms, ARGV[3] now as an ISO time, ARGV[4] lease ms, ARGV[5] the hand-off list
--       prefix (a worker id follows it; '' = hand nothing off).
-- Hand-off: a job due now whose queue has an idle worker with its task (registered by that
-- worker's last claim call, start.lua) is started here for that worker, as its claim would
-- start it (lease, record running, queue entry at the lease's expiry, audit 'started'), and
-- pushed to the worker's hand-off list, which the worker is blocked on: no wake message and
-- no claim round trip between the submit and the task. The worker leaves the idle set (one
-- job per registration). A worker that died registered has the job come back when the lease
-- lapses, as any dead worker's job does.
-- Returns one {code, id} per job: {1, id} created, {0, id} same key and payload, {-1, id} same
-- key other payload.
-- A command that fails half-way (a key of the wrong type, say) undoes what this call wrote for
-- every job of the batch before the error is returned: Redis itself does not roll a script
-- back. The caller then sends the jobs one by one, so each gets its own outcome.
W.on = true
local jobs = cjson.decode(ARGV[1])
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[4])
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

local none_idle = {} -- idle sets found empty: not asked again in this call

-- An idle worker of the job's queue that has its task (taken out of the idle set), or nil.
local function idle_worker(a, K, w)
  if ARGV[5] == '' or a['ready'] ~= '1' or none_idle[K[17]] then return nil end
  local found = redis.call('ZRANGEBYSCORE', K[17], '(' .. ARGV[2], '+inf', 'WITHSCORES',
    'LIMIT', 0, 1)
  if #found == 0 then
    none_idle[K[17]] = true
    return nil
  end
  local worker, tasks = string.match(found[1], '^(.-)|(.*)$')
  if not worker or not string.find(tasks, ',' .. a['fields']['task'] .. ',', 1, true) then
    return nil
  end
  redis.call('ZREM', K[17], found[1])
  w.idle = {found[1], found[2]} -- put back by the undo
  return worker
end

-- The started job as start.lua returns a 'run' entry, for the worker's hand-off list.
local function handed(a, f)
  local v = function(name) return f[name] or '' end
  return cjson.encode({q = a['k'][10], e = {a['id'], 'run', a['score'], 1, '', v('params'),
    v('timeout_seconds'), v('max_tries'), '0', v('tenant'), v('task'), v('plan'),
    v('correlation_id'), v('callback_url'), v('priority'), v('created_at'), v('expires_at')}})
end

local function hand_off(a, K, w, worker)
  local id = a['id']
  redis.call('SET', K[18], worker, 'PX', lease)
  redis.call('RPUSH', K[2], cjson.encode({at = ARGV[3], event = 'started', status = 'running',
    attempt = 1, worker_id = worker}))
  W.zadd(K[10], now + lease, id)
  local list, item = ARGV[5] .. worker, handed(a, a['fields'])
  redis.call('RPUSH', list, item)
  redis.call('PEXPIRE', list, lease)
  w.handed = {list, item}
end

local function write(a, K, w)
  local id, fields = a['id'], a['fields']
  local worker = idle_worker(a, K, w)
  if worker then
    fields['status'], fields['attempts'], fields['worker_id'] = 'running', '1', worker
    fields['started_at'], fields['updated_at'] = ARGV[2], ARGV[2]
  end
  local flat = {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = tostring(value)
  end
  local created = tonumber(a['created'])
  redis.call('HSET', K[1], unpack(flat))
  -- a started job is in its tenant's running index; every tenant's is rebuilt on read
  local indices = worker and {3, 5, 12, 14, 15, 16} or {3, 4, 5, 12, 13, 14, 15}
  for _, i in ipairs(indices) do
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
  if a['expires'] ~= '' and not worker then
    W.zadd(K[8], tonumber(a['expires']), id)
  end
  -- the two writes arq's enqueue_job makes, for a fresh id nobody else can race on
  redis.call('PSETEX', K[9], tonumber(a['payload_ttl']), a['payload'])
  if worker then
    hand_off(a, K, w, worker)
  else
    W.zadd(K[10], tonumber(a['score']), id)
  end
end

-- Everything a written job may have left; counters need no undo: they go out last, so an
-- error means they were not written.
local function undo(a, K, w)
  redis.pcall('DEL', K[1], K[2], K[9])
  for _, i in ipairs({3, 4, 5, 8, 10, 12, 13, 14, 15, 16}) do
    redis.pcall('ZREM', K[i], a['id'])
  end
  if w.handed then
    redis.pcall('DEL', K[18])
    redis.pcall('LREM', w.handed[1], 1, w.handed[2])
  end
  if w.idle then
    redis.pcall('ZADD', K[17], w.idle[2], w.idle[1])
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
