-- A waiting record (queued or retrying) with no entry in arq's queue: put it back, in one step
-- with the check (nothing happens if the record changed since the caller looked, the entry is
-- back, or a worker holds the job's lease).
-- KEYS: 1 job hash, 2 audit list, 3 arq queue, 4 arq job key, 5 arq in-progress key
-- ARGV: 1 job id, 2 status seen, 3 'updated_at|created_at' seen, 4 queue score ms,
--       5 arq payload, 6 arq payload ttl ms, 7 audit entry (JSON), 8 now ms
-- Returns 1 put back, 0 left alone.
local seen = redis.call('HMGET', KEYS[1], 'status', 'updated_at', 'created_at')
if seen[1] ~= ARGV[2] or ((seen[2] or '') .. '|' .. (seen[3] or '')) ~= ARGV[3] then return 0 end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('PSETEX', KEYS[4], tonumber(ARGV[6]), ARGV[5])
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[7])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[8])
return 1
