"""The store's Lua scripts: each is one atomic step, and each is safe to run again after a lost reply."""

from __future__ import annotations

# Compare-and-set of the record plus its indexes, its timeline events and its reminder job, so readers never
# see half a change and a reminder is never lost or doubled: the job at the record's `reminder.at` is created
# (and the previous one withdrawn) in the same step as the record that asks for it.
# KEYS: incident, timeline, open set, jobs due set, channel index, channel-name index, applied ops, jobs wake.
# ARGV: expected version ('new' to insert), new version, doc, id, open?, has channel?, op key, reminder job id
#       ('' for none), its job doc, its due score, job key prefix, events as one JSON array, then each event.
# An op key applied before returns {2, events it saved}: a repeat applies nothing twice.
SAVE = """
local done = redis.call('HGET', KEYS[7], ARGV[7])
if done then return {2, done} end
local cur = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == 'new' then
  if cur then return {0, ''} end
elseif cur ~= ARGV[1] then
  return {0, ''}
end
local old = redis.call('HGET', KEYS[1], 'remind') or ''
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3], 'remind', ARGV[8])
if ARGV[5] == '1' then redis.call('SADD', KEYS[3], ARGV[4]) else redis.call('SREM', KEYS[3], ARGV[4]) end
if ARGV[6] == '1' then
  redis.call('SET', KEYS[5], ARGV[4])
  redis.call('SET', KEYS[6], ARGV[4])
end
if old ~= ARGV[8] and old ~= '' then
  redis.call('ZREM', KEYS[4], old)
  local ok = ARGV[11] .. old
  if redis.call('HGET', ok, 'state') == 'running' then
    redis.call('EXPIRE', ok, 86400)  -- its worker completes it
  else
    redis.call('DEL', ok)
  end
end
-- Every save makes sure the job for the record's reminder time is there (not only when the time moved): a job
-- that ended without moving it, a withdrawn one whose time came back, or one set aside as dead, is queued again.
if ARGV[8] ~= '' then
  local nk = ARGV[11] .. ARGV[8]
  local state = redis.call('HGET', nk, 'state')
  if not state or state == 'done' or state == 'dead' then
    redis.call('DEL', nk)
    redis.call('HSET', nk, 'doc', ARGV[9], 'attempts', 0, 'owner', '', 'state', 'queued')
    redis.call('ZADD', KEYS[4], ARGV[10], ARGV[8])
    redis.call('PUBLISH', KEYS[8], ARGV[8])
  elseif redis.call('ZADD', KEYS[4], 'NX', ARGV[10], ARGV[8]) == 1 then
    -- queued or running but withdrawn from the due set: due again (a dead worker's claim is taken over)
    redis.call('PERSIST', nk)
    redis.call('PUBLISH', KEYS[8], ARGV[8])
  end
end
for i = 13, #ARGV do redis.call('XADD', KEYS[2], '*', 'e', ARGV[i]) end
redis.call('HSET', KEYS[7], ARGV[7], ARGV[12])
return {1, ''}
"""

# A timeline event that changes nothing else (a note), once per op key. KEYS: applied ops, timeline.
APPEND = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

# A message is pinned while anything pins it (Slack's pin, or someone's :pushpin:). The timeline hears of
# the first pin and of the last unpin only. KEYS: the message's pin sources, timeline. ARGV: source, event.
PIN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('SCARD', KEYS[1]) > 1 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

UNPIN = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
return 1
"""

# Who declared which title: the incident it is bound to, unless that one was resolved since (then a new id).
# An id is allocated only when a new incident will be created. KEYS: binding, sequence, open set.
# ARGV: ttl, incident key prefix. Returns {id, 1 if newly allocated}.
BIND_DECLARE = """
local bound = redis.call('GET', KEYS[1])
if bound then
  if redis.call('EXISTS', ARGV[2] .. bound) == 0 or redis.call('SISMEMBER', KEYS[3], bound) == 1 then
    return {tonumber(bound), 0}
  end
end
local id = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return {id, 1}
"""

# A value that is ours, or free and now ours: channel-name reservations and locks.
# KEYS: key. ARGV: owner, ttl in ms. Returns 1 if held by `owner` now.
CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
