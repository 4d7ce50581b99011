-- learn_batch.lua: count many messages as spam or ham at once, each token read and written
-- once however many of the messages contain it. The caller sums the messages' changes per
-- token (mailsift.classifier.store.batch_deltas) from the seen records it read beforehand;
-- this script first checks those records are still what the caller read, and otherwise
-- changes nothing and returns "conflict" (another host learned one of the messages meanwhile:
-- the caller reads again and resends).
-- All or nothing: every key is read (and type-checked by the read) before the first write,
-- and Redis refuses a script over maxmemory only at its first write; Redis does not roll back
-- a script that fails half-way, so nothing may fail after writing starts.
--
-- KEYS[1]          totals hash of the store (fields s, h: messages learned per class)
-- KEYS[2..n+1]     seen records (string "spam" or "ham") of the batch's n messages, each once
-- KEYS[n+2..]      token hashes (fields s, h: messages per class; a: last seen), each once
-- ARGV[1]          class to count the messages as: "spam" or "ham"
-- ARGV[2]          now, unix seconds (becomes each token's last-seen time)
-- ARGV[3]          token TTL, seconds: a token seen in two or more messages lives this long
-- ARGV[4]          hapax TTL, seconds: a token seen in one message only lives this long
-- ARGV[5]          refresh, seconds: a token's TTL is reset only when it was last reset longer
--                  ago than this (or its count leaves or reaches one): EXPIRE would be a third
--                  call per token, and bulk training sees the same tokens again within minutes
-- ARGV[6]          n, the number of messages
-- ARGV[7..n+6]     per message, the class its seen record held when the caller read it, or ""
--                  when it had none. A message holding ARGV[1] already is left alone; the
--                  others are counted as ARGV[1] (taken from the other class if they held it).
--                  For a batch of one, "?" lets the script read the record itself: one round
--                  trip, no conflict possible (a single learn, and the fallback of a batch
--                  that keeps conflicting); gains and losses are then 1 for every token, the
--                  losses applied only if the record holds the other class.
-- ARGV[n+7]        gains: per token, in KEYS order, how many of the messages add to its
--                  ARGV[1] count
-- ARGV[n+8]        losses: per token, how many relearned messages take from its count of the
--                  other class; "" when no message is relearned
-- Gains and losses are 16-bit unsigned big-endian numbers, two bytes per token, in one
-- string each: an argument per number would cost the client and Redis ~20% of a batch.
--
-- Returns "ok", or "conflict" having changed nothing; with "?": "learned", "relearned" or
-- "already" (having changed nothing). What mailsift never writes (a hand edit, another program
-- under the prefix) is refused, having changed nothing, rather than learned over: a seen record
-- holding neither class gives "damaged:" and what it holds; a total that is no whole number
-- from 0, "badtotal:", its field, ":" and what it holds; a key of another type than a hash,
-- "wrongtype:" and its name.
--
-- The result equals learning the messages one at a time (which the caller's summing and the tests
-- rely on): counts clamped at zero once equal counts clamped after each message, as each
-- field only grows or only shrinks in a batch; and a token's message count (s + h) never
-- falls in a batch, so it goes from one to more at most once, and one TTL decision on the
-- summed change gives the TTL the last of the per-message decisions would have given.

local call, max, tonumber, byte = redis.call, math.max, tonumber, string.byte
local label, now = ARGV[1], ARGV[2]
local token_ttl, hapax_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local stale = tonumber(now) - tonumber(ARGV[5])
local messages = tonumber(ARGV[6])
local gains, losses = ARGV[messages + 7], ARGV[messages + 8]

-- the number of KEYS[i] in a packed string of them, 0 past its end
local function number(packed, i)
    local j = 2 * (i - messages - 1)
    local high, low = byte(packed, j - 1, j)
    if not low then return 0 end
    return high * 256 + low
end

-- check phase: the totals, the seen records, and how the totals move
local totals, refused = checked_totals(KEYS[1])
if refused then return refused end
local learned, moved, decided = 0, 0, {}
for i = 1, messages do
    local held, expected = call('GET', KEYS[1 + i]) or '', ARGV[6 + i]
    if held ~= '' and held ~= 'spam' and held ~= 'ham' then return 'damaged:' .. held end
    if expected == '?' then
        if held == label then return 'already' end
        if held == '' then losses = '' end
        expected = held
    elseif held ~= expected then
        return 'conflict'
    end
    decided[i] = expected
    if expected ~= label then
        learned = learned + 1
        if expected ~= '' then moved = moved + 1 end
    end
end

-- new counts of a hash after adding `gain` to this class and taking `loss` from the other,
-- never below zero (a missing hash counts as zeros), and the TTL to give it now, or false to
-- leave its TTL alone: the hapax TTL while the token is in one message, the token TTL from two,
-- set when the count crosses one or the last setting is older than the refresh time; nothing
-- for a key of another type. `old`: its fields s, h, a when read already
local function new_counts(key, gain, loss, old)
    old = old or redis.pcall('HMGET', key, 's', 'h', 'a')
    if old.err then return nil end
    local s0, h0 = tonumber(old[1]) or 0, tonumber(old[2]) or 0
    local s, h
    if label == 'spam' then
        s, h = s0 + gain, max(0, h0 - loss)
    else
        s, h = max(0, s0 - loss), h0 + gain
    end
    local ttl = false
    if s0 + h0 == 0 or (s0 + h0 > 1) ~= (s + h > 1) or (tonumber(old[3]) or 0) < stale then
        ttl = hapax_ttl
        if s + h > 1 then ttl = token_ttl end
    end
    return s, h, ttl
end

-- read phase: KEYS[1] (totals) and the tokens
local spam, ham, ttls = {}, {}, {}
spam[1], ham[1] = new_counts(KEYS[1], learned, moved, totals)
for i = messages + 2, #KEYS do
    spam[i], ham[i], ttls[i] = new_counts(KEYS[i], number(gains, i), number(losses, i))
    if not spam[i] then return 'wrongtype:' .. KEYS[i] end
end

-- write phase
for i = messages + 2, #KEYS do
    local key = KEYS[i]
    call('HSET', key, 's', spam[i], 'h', ham[i], 'a', now)
    if ttls[i] then
        call('EXPIRE', key, ttls[i])
    end
end
call('HSET', KEYS[1], 's', spam[1], 'h', ham[1])
for i = 1, messages do
    if decided[i] ~= label then
        call('SET', KEYS[1 + i], label)
    end
end
if ARGV[7] == '?' then
    if decided[1] == '' then return 'learned' end
    return 'relearned'
end
return 'ok'
