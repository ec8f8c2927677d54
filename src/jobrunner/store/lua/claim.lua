-- Claim up to N eligible jobs of one arq queue in a single round trip.
-- arq claims each job with WATCH/EXISTS/ZSCORE/MULTI/PSETEX/EXEC; this does the same check
-- (eligible score, no live lease) server-side and sets arq's in-progress lease with SET NX.
-- KEYS: 1 arq queue zset
-- ARGV: 1 now ms, 2 max jobs to claim, 3 how many eligible entries to look at, 4 lease ms,
--       5 arq in-progress key prefix
-- Returns {next_score, id1, score1, id2, score2, ...}: next_score is the score of the earliest
-- job not yet due (-1 if none), so an idle worker can sleep exactly until then.
local eligible = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[3]))
local wanted = tonumber(ARGV[2])
local claimed = {}
for i = 1, #eligible, 2 do
  if #claimed >= wanted * 2 then break end
  if redis.call('SET', ARGV[5] .. eligible[i], '1', 'NX', 'PX', tonumber(ARGV[4])) then
    claimed[#claimed + 1] = eligible[i]
    claimed[#claimed + 1] = eligible[i + 1]
  end
end
local upcoming = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES',
  'LIMIT', 0, 1)
local next_score = -1
if #upcoming > 0 then next_score = upcoming[2] end
table.insert(claimed, 1, next_score)
return claimed
