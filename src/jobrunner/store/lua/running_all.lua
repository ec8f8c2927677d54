-- Rebuild every tenant's running index (idx:*:status:running) from the tenants' own. The scripts
-- that start and end jobs keep only the per-tenant running sets (two commands less per job);
-- whoever reads the every-tenant one (listing, counts, reconcile) runs this first. Running sets
-- are small (at most the workers' total concurrency), so the union is cheap.
-- KEYS: 1 the every-tenant running index, 2 the tenants set
-- ARGV: 1 a tenant's running index, '{tenant}' for the name
-- Returns the number of running jobs.
local keys = {}
for _, tenant in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  keys[#keys + 1] = (string.gsub(ARGV[1], '{tenant}', function() return tenant end))
end
redis.call('DEL', KEYS[1])
for i = 1, #keys, 500 do  -- in chunks: unpack has a limit
  local chunk = {KEYS[1]}
  for j = i, math.min(i + 499, #keys) do chunk[#chunk + 1] = keys[j] end
  redis.call('ZUNIONSTORE', KEYS[1], #chunk, unpack(chunk))
end
return redis.call('ZCARD', KEYS[1])
