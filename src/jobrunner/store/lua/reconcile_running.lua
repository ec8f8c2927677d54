-- A running record whose arq lease is gone: back to the queue (eligible now) or failed, in one
-- step with the check. Runs after transition.lua's body, wrapped as the local function
-- ``transition(KEYS, ARGV)`` (see store/reconcile.py), so the status change is the usual one.
-- Nothing happens when the lease exists at this moment (a worker claimed the job), or the
-- record is no longer the running attempt the caller saw (started_at or attempts differ).
-- KEYS: 1-7 transition.lua's keys, 8 arq in-progress key (the lease), 9 arq job key,
--       10 arq queue
-- ARGV: 1-14 transition.lua's arguments, 15 started_at seen, 16 attempts seen,
--       17 '1' back to the queue, '0' failed; 18 queue score ms; 19 arq payload ('' = none),
--       20 arq payload ttl ms, 21 job id
-- Returns {1, flat record hash} changed, {0, why} left alone.
if redis.call('EXISTS', KEYS[8]) == 1 then return {0, 'leased'} end
local seen = redis.call('HMGET', KEYS[1], 'status', 'started_at', 'attempts')
if seen[1] ~= 'running' or (seen[2] or '') ~= ARGV[15] or (seen[3] or '') ~= ARGV[16] then
  return {0, 'changed'}
end
local t_keys, t_args = {}, {}
for i = 1, 7 do t_keys[i] = KEYS[i] end
for i = 1, 14 do t_args[i] = ARGV[i] end
local moved = transition(t_keys, t_args)
if moved[1] ~= 1 then return {0, 'refused'} end
if ARGV[17] == '1' then
  if ARGV[19] ~= '' and redis.call('EXISTS', KEYS[9]) == 0 then
    redis.call('PSETEX', KEYS[9], tonumber(ARGV[20]), ARGV[19])
  end
  redis.call('ZADD', KEYS[10], tonumber(ARGV[18]), ARGV[21])
else
  redis.call('ZREM', KEYS[10], ARGV[21])
  redis.call('DEL', KEYS[9])
end
return {1, moved[2]}
