-- Move a job to a new status if the lifecycle table allows it (the record lib, prepended,
-- carries the table rendered from domain/status.py), keeping indices, the audit trail, the
-- result and the live event channel consistent in one step.
-- ARGV: 1-17 the layout, 18 job id, 19 target status, 20 fields to set (JSON, null deletes),
--       21 audit entry (JSON), 22 now ms, 23 field to increment by one ('' none),
--       24 increment only when the current status is this ('' = always), 25 result JSON ('' none)
-- Terminal jobs join the finished zset as 'tenant<TAB>task<TAB>status<TAB>id<TAB>plan' so the
-- cleanup cron can prune their index entries after the record itself has expired.
-- Returns {1} moved, {-1, current status} refused, {-2} no such job.
local id, target, now = ARGV[18], ARGV[19], tonumber(ARGV[22])
local key = named(L.record, id)
local r = redis.call('HMGET', key, 'status', 'tenant', 'task', 'plan', 'created_at', 'progress',
  'message', 'attempts', 'callback_url')
local current = r[1]
if not current then return {-2} end
if not may_move(current, target) then return {-1, current} end
local fields = cjson.decode(ARGV[20])
write_fields(key, target, now, fields)
if ARGV[23] ~= '' and (ARGV[24] == '' or ARGV[24] == current) then
  redis.call('HINCRBY', key, ARGV[23], 1)
end
reindex(L.status_idx, L.all_status_idx, id, r[2], r[5], current, target, now)
local audit_key = named(L.audit, id)
redis.call('RPUSH', audit_key, ARGV[21])
if ARGV[25] ~= '' then
  redis.call('SET', named(L.result, id), ARGV[25], 'EX', L.result_ttl)
end
if is_terminal(target) then
  seal(L, id, key, audit_key, r[2], r[3], r[4], target, now, r[9])
  redis.call('ZREM', L.expiring, id)
elseif target == 'running' then
  redis.call('ZREM', L.expiring, id)
end
local progress, message = fields['progress'] or r[6], r[7]
if fields['message'] ~= nil then
  message = fields['message'] ~= cjson.null and fields['message'] or nil
end
publish_status(named(L.events, id), id, target, progress, message, fields['attempts'] or r[8], now)
return {1}
