-- totals.lua: put before learn_batch.lua and forget.lua (redis_store._script), which must read
-- the totals hash, and refuse what mailsift never writes there, before their first write.
-- checked_totals(key) returns the hash's fields s and h (false where missing), or nil and the
-- answer refusing it: "wrongtype:" and the key when it is no hash; "badtotal:", the field, ":"
-- and what it holds when a total is no whole number from 0.
local function checked_totals(key)
    local totals = redis.pcall('HMGET', key, 's', 'h')
    if totals.err then return nil, 'wrongtype:' .. key end
    for i, name in ipairs({'s', 'h'}) do
        local held = totals[i]
        if held and not string.find(held, '^%d+$') then return nil, 'badtotal:' .. name .. ':' .. held end
    end
    return totals
end

