-- expire.lua: drop the tokens of one SCAN batch that are due, by their last-seen time, and give
-- a TTL to the ones that have none (e.g. written by a restore tool or made persistent by hand).
-- Atomic per batch, so a token learned again meanwhile is never dropped on stale data.
--
-- KEYS[1..] token hashes (fields s, h, a)
-- ARGV[1]   now, unix seconds, on the same clock as the tokens' last-seen times
-- ARGV[2]   token TTL, seconds: drop tokens last seen longer ago than this
-- ARGV[3]   hapax TTL, seconds: drop tokens with a count of one last seen longer ago than this
--
-- Returns the number of tokens dropped.

local now, token_ttl, hapax_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local removed = 0

for i = 1, #KEYS do
    local key = KEYS[i]
    local fields = redis.call('HMGET', key, 's', 'h', 'a')
    if fields[3] then
        local ttl = token_ttl
        if (tonumber(fields[1]) or 0) + (tonumber(fields[2]) or 0) <= 1 then ttl = hapax_ttl end
        local left = tonumber(fields[3]) + ttl - now
        if left < 0 then
            redis.call('DEL', key)
            removed = removed + 1
        elseif redis.call('TTL', key) == -1 then
            redis.call('EXPIRE', key, math.max(1, left))
        end
    end
end
return removed
