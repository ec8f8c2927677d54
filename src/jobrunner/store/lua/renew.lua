-- Renew this worker's leases: each job whose arq in-progress lease this worker holds keeps it
-- for another lease period, and its queue entry moves along to the new expiry (so scans keep
-- skipping it). A lease that lapsed or passed to another worker is left alone.
-- KEYS: none (queues and leases are named in ARGV)
-- ARGV: 1 arq in-progress prefix, 2 worker id, 3 now ms, 4 lease ms, then (queue, id) pairs
local lease = tonumber(ARGV[4])
local until_ms = tonumber(ARGV[3]) + lease
local renewed = 0
for i = 5, #ARGV, 2 do
  local key = ARGV[1] .. ARGV[i + 1]
  if redis.call('GET', key) == ARGV[2] then
    redis.call('PEXPIRE', key, lease)
    redis.call('ZADD', ARGV[i], 'XX', until_ms, ARGV[i + 1])
    renewed = renewed + 1
  end
end
return renewed
