-- Shared by the scripts that change a record's status (prepended when a script is loaded, after
-- lib_writes: index and counter writes go through its W, gathered when a script turns it on).
-- TRANSITIONS is rendered from jobrunner.domain.status.TRANSITIONS: the one table of allowed moves.
local TRANSITIONS = {--TRANSITIONS--}

local function may_move(current, target)
  local allowed = TRANSITIONS[current]
  return allowed ~= nil and allowed[target] == true
end

local function is_terminal(status)
  return next(TRANSITIONS[status] or {}) == nil
end

local function named(template, id)
  return (string.gsub(template, '{id}', id))
end

-- Moves the job between the per-tenant and all-tenants status indices. The all-tenants running
-- index is not kept here: its readers rebuild it from the tenants' own (store/running.py).
local function reindex(status_tmpl, all_tmpl, id, tenant, created, current, target, now)
  if current == target then return end
  local score = tonumber(created) or now
  local mine = string.gsub(status_tmpl, '{tenant}', function() return tenant end)
  W.zrem((string.gsub(mine, '{status}', current)), id)
  W.zadd((string.gsub(mine, '{status}', target)), score, id)
  if current ~= 'running' then
    W.zrem((string.gsub(all_tmpl, '{status}', current)), id)
  end
  if target ~= 'running' then
    W.zadd((string.gsub(all_tmpl, '{status}', target)), score, id)
  end
end

-- HSET of status, updated_at and the given fields; JSON nulls are deleted in one HDEL.
local function write_fields(key, target, now, fields)
  local flat = {'status', target, 'updated_at', now}
  local gone = {}
  for name, value in pairs(fields) do
    if value == cjson.null then
      gone[#gone + 1] = name
    else
      flat[#flat + 1] = name
      flat[#flat + 1] = tostring(value)
    end
  end
  redis.call('HSET', key, unpack(flat))
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
end

local function publish_status(channel, id, target, progress, message, attempt, now)
  redis.call('PUBLISH', channel, cjson.encode({
    job_id = id, kind = 'status', status = target, progress = tonumber(progress or '0'),
    message = message or nil, attempt = tonumber(attempt or '0'), at_ms = tonumber(now)
  }))
end

-- A terminal record: into the finished zset and the completed counter, then its TTL. A job with
-- a callback_url joins the callbacks outbox in the same call: its webhook delivery is enqueued
-- right after (callbacks.py), or by the reconcile cron if the process died in between.
local function seal(L, id, key, audit_key, tenant, task, plan, target, now, callback)
  plan = plan or ''
  if callback then W.zadd(L.callbacks, tonumber(now), id) end
  W.zadd(L.finished, tonumber(now),
    tenant .. '\t' .. task .. '\t' .. target .. '\t' .. id .. '\t' .. plan)
  W.hincrby(L.completed, plan .. '\t' .. target, 1)
  redis.call('EXPIRE', key, L.record_ttl)
  redis.call('EXPIRE', audit_key, L.record_ttl)
end

-- The key layout every record script receives first (see jobrunner.store.scripts.layout_args).
local L = {
  record = ARGV[1], audit = ARGV[2], events = ARGV[3], result = ARGV[4],
  status_idx = ARGV[5], all_status_idx = ARGV[6], finished = ARGV[7], expiring = ARGV[8],
  completed = ARGV[9], record_ttl = tonumber(ARGV[10]), result_ttl = tonumber(ARGV[11]),
  arq_job = ARGV[12], arq_retry = ARGV[13], arq_lease = ARGV[14], arq_result = ARGV[15],
  arq_abort = ARGV[16], callbacks = ARGV[17],
}
local LAYOUT_ARGS = 17
