-- Prune up to N finished jobs whose records have outlived the record TTL: their index entries
-- (the tenant's and every tenant's), and whatever of the record, audit trail and results is
-- still there (a key that lost its TTL). Bounded: one call looks at ARGV[2] entries at most.
-- KEYS: 1 finished zset ('tenant<TAB>task<TAB>status<TAB>id<TAB>plan' by finish ms)
-- ARGV: 1 cutoff ms (now - record ttl), 2 batch size, 3 now ms, 4 record ttl ms,
--       5 key templates joined by newlines, '{id}', '{tenant}', '{status}', '{task}', '{plan}'
--       placeholders: record, audit, result, arq retry, arq result, tenant index, status
--       index, task index, plan index; 6 every tenant's name, 7 terminal statuses (comma list)
-- Returns {entries looked at, jobs pruned, keys deleted, index entries removed, still alive}.
-- each template split once into {text, name, text, name, ..., text}, filled by concatenation
local templates = {}
for line in string.gmatch(ARGV[5], '[^\n]+') do
  local parts, at = {}, 1
  for literal, name, after in string.gmatch(line, '([^{]*){(%a+)}()') do
    parts[#parts + 1] = literal
    parts[#parts + 1] = name
    at = after
  end
  parts[#parts + 1] = string.sub(line, at)
  templates[#templates + 1] = parts
end
local function fill(parts, values)
  local key = parts[1]
  for i = 2, #parts, 2 do key = key .. (values[parts[i]] or '') .. parts[i + 1] end
  return key
end
local terminal = {}
for status in string.gmatch(ARGV[7], '[^,]+') do terminal[status] = true end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
  tonumber(ARGV[2]))
local pruned, deleted, removed, alive = 0, 0, 0, 0
local done = {}
for _, member in ipairs(members) do
  local parts = {}
  for field in string.gmatch(member .. '\t', '([^\t]*)\t') do parts[#parts + 1] = field end
  local v = {tenant = parts[1], task = parts[2], status = parts[3], id = parts[4], plan = parts[5]}
  local record = fill(templates[1], v)
  local current = redis.call('HGET', record, 'status')
  local ttl = current and redis.call('PTTL', record) or -2
  if current and terminal[current] and ttl > 0 then
    -- the record still lives (its TTL was longer): look again when it has expired
    redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + ttl - tonumber(ARGV[4]), member)
    alive = alive + 1
  elseif current and not terminal[current] then
    -- the id runs again: its index entries are the live job's; only this entry goes
    done[#done + 1] = member
  else
    deleted = deleted + redis.call('DEL', record, fill(templates[2], v), fill(templates[3], v),
      fill(templates[4], v), fill(templates[5], v))
    for _, owner in ipairs({v.tenant, ARGV[6]}) do
      v.tenant = owner
      for i = 6, 8 do removed = removed + redis.call('ZREM', fill(templates[i], v), v.id) end
    end
    if v.plan and v.plan ~= '' then
      removed = removed + redis.call('ZREM', fill(templates[9], v), v.id)
    end
    done[#done + 1] = member
    pruned = pruned + 1
  end
end
if #done > 0 then redis.call('ZREM', KEYS[1], unpack(done)) end
return {#members, pruned, deleted, removed, alive}
