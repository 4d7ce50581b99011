-- forget.lua: take back exactly what learning one message added. All or nothing, like
-- learn_batch.lua: every key is read before the first write.
--
-- KEYS[1]   totals hash of the store (fields s, h)
-- KEYS[2]   seen record of the message (string "spam" or "ham")
-- KEYS[3..] token hashes (fields s, h, a), each token once
-- ARGV[1]   hapax TTL, seconds: a token left with a count of one gets at most this TTL
--
-- Returns "forgotten", or "unknown" (changing nothing) when the message was never learned, or,
-- changing nothing, what learn_batch.lua answers about what mailsift never writes: "damaged:"
-- and what the seen record holds when it names neither class, "badtotal:" when a total is no
-- whole number from 0, "wrongtype:" when a key is not a hash.
-- Tokens that expired or were evicted since are skipped; counts never go below zero, and a
-- token left with no count at all is deleted.

local hapax_ttl = tonumber(ARGV[1])

local previous = redis.call('GET', KEYS[2])
if not previous then
    return 'unknown'
end
if previous ~= 'spam' and previous ~= 'ham' then
    return 'damaged:' .. previous
end
local field = 'h'
if previous == 'spam' then field = 's' end

-- counts of a hash with one taken from the message's class, never below zero
local function decremented(counts)
    local s, h = tonumber(counts[1]) or 0, tonumber(counts[2]) or 0
    if field == 's' then s = math.max(0, s - 1) else h = math.max(0, h - 1) end
    return s, h
end

-- read phase: the totals, checked, and the counts of the tokens still present
local totals, refused = checked_totals(KEYS[1])
if refused then return refused end
local present, spam, ham, ttls = {}, {}, {}, {}
for i = 3, #KEYS do
    local counts = redis.pcall('HMGET', KEYS[i], 's', 'h')
    if counts.err then return 'wrongtype:' .. KEYS[i] end
    if counts[1] or counts[2] then
        present[#present + 1] = i
        spam[i], ham[i] = decremented(counts)
        ttls[i] = redis.call('TTL', KEYS[i])
    end
end
local total_spam, total_ham = decremented(totals)

-- write phase
for _, i in ipairs(present) do
    local key, s, h = KEYS[i], spam[i], ham[i]
    if s + h == 0 then
        redis.call('DEL', key)
    else
        redis.call('HSET', key, 's', s, 'h', h)
        if s + h == 1 and (ttls[i] < 0 or ttls[i] > hapax_ttl) then
            redis.call('EXPIRE', key, hapax_ttl)
        end
    end
end
redis.call('HSET', KEYS[1], 's', total_spam, 'h', total_ham)
redis.call('DEL', KEYS[2])
return 'forgotten'
