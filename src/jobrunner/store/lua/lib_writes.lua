-- Writes a batch script gathers per key and sends at its end, one command per key: N jobs that
-- each leave one index and join another cost two ZREM/ZADD calls, not 2N. Prepended to the
-- scripts that handle many jobs per call (create_jobs, start, finish); a script that never turns
-- gathering on (W.on) writes at once, as before.
-- Only writes nothing in the same script reads back go through W: zset members (the last
-- change of a member wins, as the commands in order would leave it), whole-key DELs and hash
-- counters. A script calls W.flush() before it reads a key it gathered writes for, and before
-- it returns.
local W = {on = false, zsets = {}, zorder = {}, dels = {}, counts = {}, corder = {}}

local CHUNK = 1000 -- members per command: unpack() has a stack limit

-- xx: true for ZADD XX, false for plain ZADD, nil for a removal (it takes the key's mode)
local function zset_of(key, xx)
  local z = W.zsets[key]
  if z and xx ~= nil and z.xx ~= nil and z.xx ~= xx then
    W.flush_zset(key) -- one mode per key per command: a change of mode sends what is held
    z = nil
  end
  if not z then
    z = {order = {}, score = {}}
    W.zsets[key] = z
    W.zorder[#W.zorder + 1] = key
  end
  if xx ~= nil then z.xx = xx end
  return z
end

local function put(key, member, score, xx)
  if not W.on then
    if score == false then
      redis.call('ZREM', key, member)
    elseif xx then
      redis.call('ZADD', key, 'XX', score, member)
    else
      redis.call('ZADD', key, score, member)
    end
    return
  end
  local z = zset_of(key, xx)
  if xx and z.score[member] == false then return end -- ZADD XX after ZREM: still absent
  if z.score[member] == nil then z.order[#z.order + 1] = member end
  z.score[member] = score -- false: removed
end

function W.zadd(key, score, member) put(key, member, score, false) end
function W.zadd_xx(key, score, member) put(key, member, score, true) end
function W.zrem(key, member) put(key, member, false, nil) end

function W.del(...)
  if not W.on then
    redis.call('DEL', ...)
    return
  end
  for _, key in ipairs({...}) do W.dels[#W.dels + 1] = key end
end

function W.hincrby(key, field, by)
  if not W.on then
    return redis.call('HINCRBY', key, field, by)
  end
  local slot = key .. '\0' .. field
  if not W.counts[slot] then
    W.counts[slot] = {key, field, 0}
    W.corder[#W.corder + 1] = slot
  end
  W.counts[slot][3] = W.counts[slot][3] + by
end

local function send(prefix, items, step)
  for i = 1, #items, step do
    local args = {unpack(prefix)}
    for j = i, math.min(i + step - 1, #items) do args[#args + 1] = items[j] end
    redis.call(unpack(args))
  end
end

function W.flush_zset(key)
  local z = W.zsets[key]
  if not z then return end
  W.zsets[key] = nil
  local adds, gone = {}, {}
  for _, member in ipairs(z.order) do
    local score = z.score[member]
    if score == false then
      gone[#gone + 1] = member
    else
      adds[#adds + 1] = score
      adds[#adds + 1] = member
    end
  end
  if #gone > 0 then send({'ZREM', key}, gone, CHUNK) end
  if #adds > 0 then -- score/member pairs: an even step keeps them together
    send(z.xx and {'ZADD', key, 'XX'} or {'ZADD', key}, adds, CHUNK * 2)
  end
end

function W.flush()
  for _, key in ipairs(W.zorder) do W.flush_zset(key) end
  W.zorder = {}
  if #W.dels > 0 then
    local dels = W.dels
    W.dels = {}
    send({'DEL'}, dels, CHUNK)
  end
  for _, slot in ipairs(W.corder) do
    local c = W.counts[slot]
    if c[3] ~= 0 then redis.call('HINCRBY', c[1], c[2], c[3]) end
  end
  W.counts, W.corder = {}, {}
end

-- Drops what is held without writing it (a script undoing its own writes after an error).
function W.discard()
  W.zsets, W.zorder, W.dels, W.counts, W.corder = {}, {}, {}, {}, {}
end
