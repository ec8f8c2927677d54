-- A running record whose arq lease is gone: back to the queue (eligible now) or failed, in one
-- step with the check. The record lib and transition.lua's body (as the local function
-- ``transition(KEYS, ARGV)``) come first (store/scripts.py), so the status change is the usual
-- one, checked against the lifecycle table.
-- Nothing happens when the lease exists at this moment (a worker claimed the job), or the
-- record is no longer the running attempt the caller saw (started_at or attempts differ).
-- KEYS: 1 arq in-progress key (the lease), 2 arq job key, 3 arq queue
-- ARGV: 1-25 transition.lua's arguments (the layout, then the change; 18 is the job id),
--       26 started_at seen, 27 attempts seen, 28 '1' back to the queue, '0' failed;
--       29 queue score ms; 30 arq payload ('' = none), 31 arq payload ttl ms, 32 job id
-- Returns {1, flat record hash} changed, {0, why} left alone.
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'leased'} end
local record = named(L.record, ARGV[32])
local seen = redis.call('HMGET', record, 'status', 'started_at', 'attempts')
if seen[1] ~= 'running' or (seen[2] or '') ~= ARGV[26] or (seen[3] or '') ~= ARGV[27] then
  return {0, 'changed'}
end
local moved = transition(KEYS, ARGV)
if moved[1] ~= 1 then return {0, 'refused'} end
if ARGV[28] == '1' then
  if ARGV[30] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('PSETEX', KEYS[2], tonumber(ARGV[31]), ARGV[30])
  end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[29]), ARGV[32])
else
  redis.call('ZREM', KEYS[3], ARGV[32])
  redis.call('DEL', KEYS[2])
end
return {1, redis.call('HGETALL', record)}
