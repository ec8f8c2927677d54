-- Walk a bounded slice of an arq queue and drop the entries nothing stands behind: no record,
-- no arq job key, no lease (arq could not run them; nobody could see them).
-- KEYS: 1 arq queue
-- ARGV: 1 first rank, 2 entries to look at, 3 record key template ('{id}'),
--       4 arq job key prefix, 5 arq in-progress key prefix
-- Returns {entries looked at, dropped id 1, dropped id 2, ...}
local first = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[2]) - 1)
local out = {#ids}
for _, id in ipairs(ids) do
  local record = string.gsub(ARGV[3], '{id}', function() return id end)
  if redis.call('EXISTS', record, ARGV[4] .. id, ARGV[5] .. id) == 0 then
    redis.call('ZREM', KEYS[1], id)
    out[#out + 1] = id
  end
end
return out
