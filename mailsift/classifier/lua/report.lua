-- report.lua: record a reported message and count each of its digests once, all or nothing.
-- Done by the client as two calls, a crash between them left the message recorded with its
-- digests uncounted, and as a repeat report is recognised by the record, reporting it again
-- never counted them.
--
-- KEYS[1]    {P}rm:<message>, the set of the message's digests ("-" for a message without any)
-- KEYS[2..]  {P}rd:<digest>, how many reported messages carry each digest
-- ARGV       the members of KEYS[1]: "-", then the digests
--
-- Returns 1, or 0 (changing nothing) if the message was reported before.

if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
for i = 1, #ARGV do
    redis.call('SADD', KEYS[1], ARGV[i])
end
for i = 2, #KEYS do
    redis.call('INCR', KEYS[i])
end
return 1
