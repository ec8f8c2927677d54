-- One page of a status index, looked at server-side: only the ids that look wrong come back
-- (each is then fixed by its own checked call), so a page of healthy jobs costs one short call.
-- KEYS: 1 the status index walked (every tenant's)
-- ARGV: 1 first rank, 2 ids to look at, 3 record key template ('{id}'),
--       4 arq in-progress key prefix, 5 the index's status, 6 grace cutoff ms (younger changes
--       are left), 7 'running' (suspect: no lease) or 'waiting' (suspect: not in its arq queue)
-- Returns {ids looked at, suspect id 1, suspect id 2, ...}
local first = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[2]) - 1)
local cutoff = tonumber(ARGV[6])
local out = {#ids}
for _, id in ipairs(ids) do
  local record = string.gsub(ARGV[3], '{id}', function() return id end)
  local f = redis.call('HMGET', record, 'status', 'queue', 'started_at', 'updated_at', 'created_at')
  if f[1] == ARGV[5] and f[2] and redis.call('EXISTS', ARGV[4] .. id) == 0 then
    if ARGV[7] == 'running' then
      if tonumber(f[3] or f[5] or '0') <= cutoff then out[#out + 1] = id end
    elseif tonumber(f[4] or f[5] or '0') <= cutoff and not redis.call('ZSCORE', f[2], id) then
      out[#out + 1] = id
    end
  end
end
return out
