-- learn.lua: count one message as spam or ham, or move it from the other class (relearn).
-- Runs atomically; Redis refuses a script over maxmemory only at its first write, so a learn
-- is either refused whole or applied whole, never half-counted.
--
-- KEYS[1]   totals hash of the store (fields s, h: messages learned per class)
-- KEYS[2]   seen record of the message (string "spam" or "ham")
-- KEYS[3..] token hashes (fields s, h: messages per class; a: last seen), each token once
-- ARGV[1]   class to count the message as: "spam" or "ham"
-- ARGV[2]   now, unix seconds (becomes each token's last-seen time)
-- ARGV[3]   token TTL, seconds: a token seen in two or more messages lives this long
-- ARGV[4]   hapax TTL, seconds: a token seen in one message only lives this long
--
-- Returns "learned", "relearned" or "already".

local label, now = ARGV[1], ARGV[2]
local token_ttl, hapax_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])

local previous = redis.call('GET', KEYS[2])
if previous == label then
    return 'already'
end

-- deltas to the spam and ham counts: +1 to this class, and -1 to the other on a relearn
local ds, dh = 0, 0
if label == 'spam' then ds = 1 else dh = 1 end
if previous then
    if label == 'spam' then dh = -1 else ds = -1 end
end

-- new counts of a hash after the deltas, never below zero (a missing hash counts as zeros)
local function moved(key)
    local counts = redis.call('HMGET', key, 's', 'h')
    return math.max(0, (tonumber(counts[1]) or 0) + ds), math.max(0, (tonumber(counts[2]) or 0) + dh)
end

for i = 3, #KEYS do
    local key = KEYS[i]
    local s, h = moved(key)
    redis.call('HSET', key, 's', s, 'h', h, 'a', now)
    if s + h > 1 then
        redis.call('EXPIRE', key, token_ttl)
    else
        redis.call('EXPIRE', key, hapax_ttl)
    end
end

local s, h = moved(KEYS[1])
redis.call('HSET', KEYS[1], 's', s, 'h', h)
redis.call('SET', KEYS[2], label)
if previous then
    return 'relearned'
end
return 'learned'
