-- Page through the intersection of several job indices without building it: walk the first
-- index newest first from a rank, keep the ids every other index also holds, stop when the
-- page is full or after a bounded number of entries (so one call stays short at any size).
-- KEYS: 1 the index walked (the smallest), 2.. the indices an id must also be in
-- ARGV: 1 first rank, 2 ids wanted, 3 most entries to look at
-- Returns {next rank (-1: the walked index is exhausted), entries looked at, id1, id2, ...}
local rank = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local size = redis.call('ZCARD', KEYS[1])
local stop = math.min(rank + tonumber(ARGV[3]), size)
local found = {-1, 0}
local start = rank
while rank < stop and #found - 2 < wanted do
  local ids = redis.call('ZREVRANGE', KEYS[1], rank, math.min(rank + 200, stop) - 1)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    rank = rank + 1
    local everywhere = true
    for k = 2, #KEYS do
      if not redis.call('ZSCORE', KEYS[k], id) then
        everywhere = false
        break
      end
    end
    if everywhere then
      found[#found + 1] = id
      if #found - 2 >= wanted then break end
    end
  end
end
if rank < size then found[1] = rank end
found[2] = rank - start
return found
