-- forget.lua: take back exactly what learning one message added. Runs atomically.
--
-- KEYS[1]   totals hash of the store (fields s, h)
-- KEYS[2]   seen record of the message (string "spam" or "ham")
-- KEYS[3..] token hashes (fields s, h, a), each token once
-- ARGV[1]   hapax TTL, seconds: a token left with a count of one gets at most this TTL
--
-- Returns "forgotten", or "unknown" (changing nothing) when the message was never learned.
-- Tokens that expired or were evicted since are skipped; counts never go below zero, and a
-- token left with no count at all is deleted.

local hapax_ttl = tonumber(ARGV[1])

local previous = redis.call('GET', KEYS[2])
if not previous then
    return 'unknown'
end
local field = 'h'
if previous == 'spam' then field = 's' end

-- counts of a hash with one taken from the message's class, never below zero
local function decremented(counts)
    local s, h = tonumber(counts[1]) or 0, tonumber(counts[2]) or 0
    if field == 's' then s = math.max(0, s - 1) else h = math.max(0, h - 1) end
    return s, h
end

for i = 3, #KEYS do
    local key = KEYS[i]
    local counts = redis.call('HMGET', key, 's', 'h')
    if counts[1] or counts[2] then
        local s, h = decremented(counts)
        if s + h == 0 then
            redis.call('DEL', key)
        else
            redis.call('HSET', key, 's', s, 'h', h)
            local ttl = redis.call('TTL', key)
            if s + h == 1 and (ttl < 0 or ttl > hapax_ttl) then
                redis.call('EXPIRE', key, hapax_ttl)
            end
        end
    end
end

local s, h = decremented(redis.call('HMGET', KEYS[1], 's', 'h'))
redis.call('HSET', KEYS[1], 's', s, 'h', h)
redis.call('DEL', KEYS[2])
return 'forgotten'
