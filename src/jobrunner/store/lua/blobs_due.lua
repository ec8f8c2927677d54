-- Claim up to N blobs the cleanup may delete now. An upload is due at its expiry; a job's
-- output once the job has ended and its result is gone (until then its time moves on to when
-- the result expires). A claimed entry's time moves ARGV[5] ahead, so a cleanup that dies
-- between claiming and deleting leaves it to a later run; the caller removes the entry once
-- the blob is deleted.
-- KEYS: 1 blob expiry zset ('ref<TAB>job id' -> due ms)
-- ARGV: 1 now ms, 2 batch size, 3 record key template ('{id}'), 4 result key template,
--       5 claim ms, 6 an output's wait while its job has not ended (ms), 7 terminal statuses,
--       8 owner hash template ('{id}' = the blob id), 9 how long an owner entry outlives
--       its blob's due time (ms), 10 arq's result key template (a success's result lives only
--       there: the later of the two expiries counts)
-- Returns {entries looked at, entries kept for later, ref1, member1, ref2, member2, ...}
local terminal = {}
for status in string.gmatch(ARGV[7], '[^,]+') do terminal[status] = true end
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {#due, 0}
local function later(member, ref, at)
  redis.call('ZADD', KEYS[1], at, member)
  local bid = string.match(ref, '^%a+://(%x+)')
  if bid then
    redis.call('PEXPIRE', (string.gsub(ARGV[8], '{id}', bid)), at - now + tonumber(ARGV[9]))
  end
  out[2] = out[2] + 1
end
for _, member in ipairs(due) do
  local ref, job = string.match(member, '^([^\t]*)\t(.*)$')
  ref = ref or member
  local wait = 0
  if job and job ~= '' then
    local status = redis.call('HGET', (string.gsub(ARGV[3], '{id}', job)), 'status')
    if status and not terminal[status] then
      wait = tonumber(ARGV[6])
    else
      wait = math.max(0, redis.call('PTTL', (string.gsub(ARGV[4], '{id}', job))),
        redis.call('PTTL', (string.gsub(ARGV[10], '{id}', job))))
    end
  end
  if wait > 0 then
    later(member, ref, now + wait)
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), member)
    out[#out + 1] = ref
    out[#out + 1] = member
  end
end
return out
