/* scripts.c: Lua sources of the scripts declared in scripts.h. */
#include "worker/scripts.h"

#include "worker/route.h"

/* LRANGE + LTRIM + RPUSH instead of LMOVE in a loop: three calls whatever
 * the batch size. --batch is capped well below Lua's unpack() limit. */
static const char take_lua[] =
    "local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)\n"
    "if #items > 0 then\n"
    "  redis.call('LTRIM', KEYS[1], #items, -1)\n"
    "  redis.call('RPUSH', KEYS[2], unpack(items))\n"
    "end\n"
    "return items\n";

/* The idempotency value is the envelope fingerprint followed by the packed
 * message: a redelivered envelope (same bytes, after a worker died between
 * storing and handing on) must be fanned out again, while a client's retry
 * (a new envelope) must not. cmsgpack packs integral Lua numbers as msgpack
 * integers, so seq and ts come out as ints. A room's members are not read
 * here: its message goes to the room's channel (fanout.c), so a send costs
 * the same in a room of 2 or of 100,000. */
static const char send_lua[] =
    "local room = ARGV[1] == '1'\n"
    "if KEYS[4] then\n"
    "  local v = redis.call('GET', KEYS[4])\n"
    "  if v then\n"
    "    if string.sub(v, 1, 16) == ARGV[8] then\n"
    "      return {2, string.sub(v, 17)}\n"
    "    end\n"
    "    return {1, string.sub(v, 17)}\n"
    "  end\n"
    "end\n"
    "if room and redis.call('SISMEMBER', KEYS[3], ARGV[3]) == 0 then\n"
    "  if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "    return {-2}\n"
    "  end\n"
    "  return {-1}\n"
    "end\n"
    "local seq = redis.call('INCR', KEYS[1])\n"
    "local t = redis.call('TIME')\n"
    "local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local m = cmsgpack.pack({op = 'message', conv = ARGV[2], seq = seq, msg = ARGV[5],\n"
    "                         from = ARGV[3], text = ARGV[4], ts = ts})\n"
    "redis.call('ZADD', KEYS[2], seq, m)\n"
    "redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[6]) + 1))\n"
    "if KEYS[4] then\n"
    "  redis.call('SET', KEYS[4], ARGV[8] .. m, 'EX', ARGV[7])\n"
    "end\n"
    "return {0, m}\n";

/* A room exists while it has members or messages. Pages backwards are read
 * newest first (so LIMIT keeps the newest) and reversed here. */
static const char history_lua[] =
    "if ARGV[1] ~= '' and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then\n"
    "  if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "    return {-2}\n"
    "  end\n"
    "  return {-1}\n"
    "end\n"
    "local out = {0}\n"
    "if ARGV[2] == 'after' then\n"
    "  local items = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[3], '+inf', 'LIMIT', 0, ARGV[4])\n"
    "  for i = 1, #items do out[#out + 1] = items[i] end\n"
    "else\n"
    "  local hi = '+inf'\n"
    "  if ARGV[2] == 'before' then hi = '(' .. ARGV[3] end\n"
    "  local items = redis.call('ZREVRANGEBYSCORE', KEYS[2], hi, '-inf', 'LIMIT', 0, ARGV[4])\n"
    "  for i = #items, 1, -1 do out[#out + 1] = items[i] end\n"
    "end\n"
    "return out\n";

/* LPUSH from the last item to the first puts a dead worker's batch back at
 * the head of the queue in its original order, ahead of newer work. */
static const char beat_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)\n"
    "local moved = 0\n"
    "for _, w in ipairs(dead) do\n"
    "  local lists = {{KEYS[2], ARGV[3] .. w}, {KEYS[3], ARGV[4] .. w}}\n"
    "  for _, l in ipairs(lists) do\n"
    "    local items = redis.call('LRANGE', l[2], 0, -1)\n"
    "    for i = #items, 1, -1 do redis.call('LPUSH', l[1], items[i]) end\n"
    "    moved = moved + #items\n"
    "    redis.call('DEL', l[2])\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], w)\n"
    "end\n"
    "return {moved, #dead}\n";

/* The bitmap is a ring of 2^18 bits indexed by seq * 64 + part: setting a
 * bit clears the one half a ring ahead, so it stays at most 32 KiB per
 * conversation and remembers the last 2^17 / 64 = 2048 messages' parts —
 * far more than are in flight when a dead worker's jobs are redone.
 * ARGV: seq, part, delivery, ack channel ('' for none), ack delivery, then
 * the channels. The ack goes first: a sender sees its ack before the
 * delivery of its own message; a part already published sends neither. */
#define STR_(x) #x
#define STR(x) STR_(x)
/* Both fan-out scripts start here: mark part ARGV[2] of seq ARGV[1] in the
 * ring KEYS[1] (route.h's wk_fanned_bit computes the same bit), and stop
 * with 0 when it was marked already. */
#define FANNED_MARK_LUA                                                                                            \
    "local ring = " STR(WK_FANNED_RING) "\n"                                                                     \
    "local bit = (tonumber(ARGV[1]) * " STR(WK_FANNED_PARTS) " + tonumber(ARGV[2])) % ring\n"                     \
    "if redis.call('SETBIT', KEYS[1], bit, 1) == 1 then\n"                                                         \
    "  return 0\n"                                                                                                 \
    "end\n"                                                                                                        \
    "redis.call('SETBIT', KEYS[1], (bit + ring / 2) % ring, 0)\n"

static const char fanout_lua[] =
    FANNED_MARK_LUA
    "if ARGV[4] ~= '' then\n"
    "  redis.call('PUBLISH', ARGV[4], ARGV[5])\n"
    "end\n"
    "for i = 6, #ARGV do\n"
    "  redis.call('PUBLISH', ARGV[i], ARGV[3])\n"
    "end\n"
    "return #ARGV - 5\n";

/* The same ring as fanout_lua. Only the room channel may be published to
 * here (KEYS[2], the conversation's slot); per-user channels are
 * SPUBLISHed by the worker before this marks their part. */
static const char fanout_shard_lua[] =
    FANNED_MARK_LUA
    "for i = 2, #KEYS do\n"
    "  redis.call('SPUBLISH', KEYS[i], ARGV[3])\n"
    "end\n"
    "return 1\n";

const char *wk_script_source(enum wk_script s)
{
    switch (s) {
    case WK_SCRIPT_TAKE: return take_lua;
    case WK_SCRIPT_SEND: return send_lua;
    case WK_SCRIPT_HISTORY: return history_lua;
    case WK_SCRIPT_BEAT: return beat_lua;
    case WK_SCRIPT_FANOUT: return fanout_lua;
    case WK_SCRIPT_FANOUT_SHARD: return fanout_shard_lua;
    case WK_SCRIPT_COUNT: break;
    }
    return "";
}

const char *wk_script_name(enum wk_script s)
{
    switch (s) {
    case WK_SCRIPT_TAKE: return "take";
    case WK_SCRIPT_SEND: return "send";
    case WK_SCRIPT_HISTORY: return "history";
    case WK_SCRIPT_BEAT: return "heartbeat";
    case WK_SCRIPT_FANOUT: return "fanout";
    case WK_SCRIPT_FANOUT_SHARD: return "fanout-shard";
    case WK_SCRIPT_COUNT: break;
    }
    return "?";
}
