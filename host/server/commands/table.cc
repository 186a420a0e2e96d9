// The data command table and its case-insensitive lookup (an open-addressing index built once).
#include <array>
#include <cctype>
#include <cstring>

#include "host/server/commands/command.h"
#include "host/server/commands/handlers.h"

namespace tally::server {
namespace {

constexpr uint32_t W = kCmdWrite, R = kCmdReadOnly, F = kCmdFast, M = kCmdDenyOom, I = kCmdInternal,
                   X = kCmdTransaction, B = kCmdBlockOption;

// clang-format off
constexpr CommandSpec kCommands[] = {
  // strings
  {"get", 2, R | F, 1, 1, 1, cmd::get, "string", "Returns the string value of a key."},
  {"set", -3, W | M, 1, 1, 1, cmd::set, "string", "Sets the string value of a key, with options for expiry and conditions."},
  {"setnx", 3, W | M | F, 1, 1, 1, cmd::setnx, "string", "Sets the string value of a key only when it does not exist."},
  {"setex", 4, W | M, 1, 1, 1, cmd::setex, "string", "Sets the string value and expiry in seconds of a key."},
  {"psetex", 4, W | M, 1, 1, 1, cmd::psetex, "string", "Sets the string value and expiry in milliseconds of a key."},
  {"getset", 3, W | M | F, 1, 1, 1, cmd::getset, "string", "Returns the previous string value of a key after setting it."},
  {"getdel", 2, W | F, 1, 1, 1, cmd::getdel, "string", "Returns the string value of a key after deleting the key."},
  {"getex", -2, W | F, 1, 1, 1, cmd::getex, "string", "Returns the string value of a key after changing its expiry."},
  {"mget", -2, R | F, 1, -1, 1, cmd::mget, "string", "Atomically returns the string values of one or more keys.", Split::kKeysArray},
  {"mset", -3, W | M, 1, -1, 2, cmd::mset, "string", "Atomically sets the string values of one or more keys.", Split::kKeysOk},
  {"msetnx", -3, W | M, 1, -1, 2, cmd::msetnx, "string", "Sets several keys only when none of them exists."},
  {"append", 3, W | M | F, 1, 1, 1, cmd::append, "string", "Appends a string to the value of a key."},
  {"lcs", -3, R, 1, 2, 1, cmd::lcs, "string", "Returns the longest common subsequence of two strings (LEN, IDX)."},
  {"strlen", 2, R | F, 1, 1, 1, cmd::strlen, "string", "Returns the length of a string value."},
  {"getrange", 4, R, 1, 1, 1, cmd::getrange, "string", "Returns a substring of the string stored at a key."},
  {"setrange", 4, W | M, 1, 1, 1, cmd::setrange, "string", "Overwrites part of a string value from an offset."},
  // HyperLogLog (string values in Redis's layout)
  {"pfadd", -2, W | M | F, 1, 1, 1, cmd::pfadd, "hyperloglog", "Adds elements to a HyperLogLog key, creating it if needed."},
  {"pfcount", -2, R, 1, -1, 1, cmd::pfcount, "hyperloglog", "Returns the approximated cardinality of the union of HyperLogLog keys."},
  {"pfmerge", -2, W | M, 1, -1, 1, cmd::pfmerge, "hyperloglog", "Merges HyperLogLog keys into the first (created if absent)."},
  {"incr", 2, W | M | F, 1, 1, 1, cmd::incr, "string", "Increments the integer value of a key by one."},
  {"decr", 2, W | M | F, 1, 1, 1, cmd::decr, "string", "Decrements the integer value of a key by one."},
  {"incrby", 3, W | M | F, 1, 1, 1, cmd::incrby, "string", "Increments the integer value of a key by a number."},
  {"decrby", 3, W | M | F, 1, 1, 1, cmd::decrby, "string", "Decrements the integer value of a key by a number."},
  {"incrbyfloat", 3, W | M | F, 1, 1, 1, cmd::incrbyfloat, "string", "Increments the floating point value of a key."},
  // bits of strings
  {"setbit", 4, W | M, 1, 1, 1, cmd::setbit, "bitmap", "Sets or clears the bit at an offset of a string, growing it."},
  {"getbit", 3, R | F, 1, 1, 1, cmd::getbit, "bitmap", "Returns the bit at an offset of a string."},
  {"bitcount", -2, R, 1, 1, 1, cmd::bitcount, "bitmap", "Counts the set bits of a string, or of a range of it."},
  {"bitpos", -3, R, 1, 1, 1, cmd::bitpos, "bitmap", "Finds the first set or clear bit of a string."},
  {"bitop", -4, W | M, 2, -1, 1, cmd::bitop, "bitmap", "Stores AND, OR, XOR or NOT of strings in a key."},
  {"bitfield", -2, W | M, 1, 1, 1, cmd::bitfield, "bitmap",
   "Reads, sets and increments integer fields of any width (i1..i64, u1..u63) at bit offsets of a string."},
  {"bitfield_ro", -2, R | F, 1, 1, 1, cmd::bitfield_ro, "bitmap", "Reads integer fields of a string (GET only)."},
  // SORT (sort_commands.cc): a list, set or sorted set, in order
  {"sort", -2, W | M, 1, 1, 1, cmd::sort, "keyspace",
   "Sorts a list, set or sorted set (BY, LIMIT, GET, ASC/DESC, ALPHA), returning or storing the result.",
   Split::kNone, 0, 0, true},
  {"sort_ro", -2, R, 1, 1, 1, cmd::sort_ro, "keyspace", "Sorts a list, set or sorted set (read-only SORT)."},
  // DUMP, RESTORE (dump_commands.cc): a value in Redis's serialization format
  {"dump", 2, R, 1, 1, 1, cmd::dump, "keyspace", "Serializes a value in Redis's DUMP format."},
  {"restore", -4, W | M, 1, 1, 1, cmd::restore, "keyspace",
   "Creates a key from a DUMP payload (REPLACE, ABSTTL, IDLETIME, FREQ)."},
  // keyspace
  {"del", -2, W, 1, -1, 1, cmd::del, "keyspace", "Deletes one or more keys.", Split::kKeysSum},
  {"unlink", -2, W | F, 1, -1, 1, cmd::del, "keyspace", "Deletes one or more keys.", Split::kKeysSum},
  {"exists", -2, R | F, 1, -1, 1, cmd::exists, "keyspace", "Counts how many of the given keys exist.", Split::kKeysSum},
  {"type", 2, R | F, 1, 1, 1, cmd::type, "keyspace", "Returns the type of the value stored at a key."},
  {"rename", 3, W, 1, 2, 1, cmd::rename, "keyspace", "Renames a key, overwriting the destination."},
  {"renamenx", 3, W | F, 1, 2, 1, cmd::renamenx, "keyspace", "Renames a key only when the target does not exist."},
  {"copy", -3, W | M, 1, 2, 1, cmd::copy, "keyspace", "Copies a key's value (and TTL) to another key."},
  {"object", -2, R, 2, 2, 1, cmd::object, "keyspace", "OBJECT ENCODING, FREQ, IDLETIME, REFCOUNT, HELP."},
  {"keys", 2, R, 0, 0, 0, cmd::keys, "keyspace", "Returns all key names that match a pattern.", Split::kAllConcat},
  {"scan", -2, R, 0, 0, 0, cmd::scan, "keyspace", "Iterates over the key names in the database.", Split::kAllScan},
  {"randomkey", 1, R, 0, 0, 0, cmd::randomkey, "keyspace", "Returns a random key name from the database.", Split::kAllRandom},
  {"dbsize", 1, R | F, 0, 0, 0, cmd::dbsize, "keyspace", "Returns the number of keys in the database.", Split::kAllSum},
  {"flushdb", -1, W, 0, 0, 0, cmd::flushdb, "keyspace", "Removes all keys from the current database.", Split::kAllOk},
  {"flushall", -1, W, 0, 0, 0, cmd::flushdb, "keyspace", "Removes all keys from all databases.", Split::kAllOk},
  {"expire", -3, W | F, 1, 1, 1, cmd::expire, "keyspace", "Sets the expiry of a key in seconds."},
  {"pexpire", -3, W | F, 1, 1, 1, cmd::pexpire, "keyspace", "Sets the expiry of a key in milliseconds."},
  {"expireat", -3, W | F, 1, 1, 1, cmd::expireat, "keyspace", "Sets the expiry of a key to a Unix time in seconds."},
  {"pexpireat", -3, W | F, 1, 1, 1, cmd::pexpireat, "keyspace", "Sets the expiry of a key to a Unix time in milliseconds."},
  {"ttl", 2, R | F, 1, 1, 1, cmd::ttl, "keyspace", "Returns the expiry in seconds of a key."},
  {"pttl", 2, R | F, 1, 1, 1, cmd::pttl, "keyspace", "Returns the expiry in milliseconds of a key."},
  {"expiretime", 2, R | F, 1, 1, 1, cmd::expiretime, "keyspace", "Returns the expiry time of a key as a Unix time in seconds."},
  {"pexpiretime", 2, R | F, 1, 1, 1, cmd::pexpiretime, "keyspace", "Returns the expiry time of a key as a Unix time in milliseconds."},
  {"persist", 2, W | F, 1, 1, 1, cmd::persist, "keyspace", "Removes the expiry of a key."},
  {"touch", -2, R | F, 1, -1, 1, cmd::touch, "keyspace", "Counts existing keys and refreshes their last access time.", Split::kKeysSum},
  // sets
  {"sadd", -3, W | M | F, 1, 1, 1, cmd::sadd, "set", "Adds one or more members to a set."},
  {"srem", -3, W | F, 1, 1, 1, cmd::srem, "set", "Removes one or more members from a set."},
  {"smembers", 2, R, 1, 1, 1, cmd::smembers, "set", "Returns all members of a set."},
  {"sismember", 3, R | F, 1, 1, 1, cmd::sismember, "set", "Tells whether a member belongs to a set."},
  {"smismember", -3, R | F, 1, 1, 1, cmd::smismember, "set", "Tells whether each of several members belongs to a set."},
  {"scard", 2, R | F, 1, 1, 1, cmd::scard, "set", "Returns the number of members in a set."},
  {"spop", -2, W | F, 1, 1, 1, cmd::spop, "set", "Removes and returns one or more random members of a set."},
  {"srandmember", -2, R, 1, 1, 1, cmd::srandmember, "set", "Returns one or more random members of a set."},
  {"sinter", -2, R, 1, -1, 1, cmd::sinter, "set", "Returns the intersection of several sets."},
  {"sunion", -2, R, 1, -1, 1, cmd::sunion, "set", "Returns the union of several sets."},
  {"sdiff", -2, R, 1, -1, 1, cmd::sdiff, "set", "Returns the difference of several sets."},
  {"sinterstore", -3, W | M, 1, -1, 1, cmd::sinterstore, "set", "Stores the intersection of several sets in a key."},
  {"sunionstore", -3, W | M, 1, -1, 1, cmd::sunionstore, "set", "Stores the union of several sets in a key."},
  {"sdiffstore", -3, W | M, 1, -1, 1, cmd::sdiffstore, "set", "Stores the difference of several sets in a key."},
  // Keys are argv[2 .. 2+numkeys): not expressible as first/last/step (Redis marks it movablekeys).
  {"sintercard", -3, R, 0, 0, 0, cmd::sintercard, "set", "Returns the number of members in the intersection of sets.", Split::kNone, 1},
  {"smove", 4, W | F, 1, 2, 1, cmd::smove, "set", "Moves a member from one set to another."},
  {"sscan", -3, R, 1, 1, 1, cmd::sscan, "set", "Iterates over the members of a set."},
  // hashes
  {"hset", -4, W | M | F, 1, 1, 1, cmd::hset, "hash", "Creates or modifies the values of fields in a hash."},
  {"hmset", -4, W | M | F, 1, 1, 1, cmd::hmset, "hash", "Sets the values of several fields of a hash."},
  {"hsetnx", 4, W | M | F, 1, 1, 1, cmd::hsetnx, "hash", "Sets the value of a field only when the field does not exist."},
  {"hget", 3, R | F, 1, 1, 1, cmd::hget, "hash", "Returns the value of a field in a hash."},
  {"hmget", -3, R | F, 1, 1, 1, cmd::hmget, "hash", "Returns the values of several fields of a hash."},
  {"hdel", -3, W | F, 1, 1, 1, cmd::hdel, "hash", "Deletes one or more fields from a hash."},
  {"hlen", 2, R | F, 1, 1, 1, cmd::hlen, "hash", "Returns the number of fields in a hash."},
  {"hexists", 3, R | F, 1, 1, 1, cmd::hexists, "hash", "Tells whether a field exists in a hash."},
  {"hgetall", 2, R, 1, 1, 1, cmd::hgetall, "hash", "Returns all fields and values of a hash."},
  {"hkeys", 2, R, 1, 1, 1, cmd::hkeys, "hash", "Returns all field names of a hash."},
  {"hvals", 2, R, 1, 1, 1, cmd::hvals, "hash", "Returns all values of a hash."},
  {"hincrby", 4, W | M | F, 1, 1, 1, cmd::hincrby, "hash", "Increments the integer value of a hash field."},
  {"hincrbyfloat", 4, W | M | F, 1, 1, 1, cmd::hincrbyfloat, "hash", "Increments the floating point value of a hash field."},
  {"hstrlen", 3, R | F, 1, 1, 1, cmd::hstrlen, "hash", "Returns the length of the value of a hash field."},
  {"hscan", -3, R, 1, 1, 1, cmd::hscan, "hash", "Iterates over the fields and values of a hash."},
  {"hrandfield", -2, R, 1, 1, 1, cmd::hrandfield, "hash", "Returns one or more random fields of a hash."},
  // lists
  {"lpush", -3, W | M | F, 1, 1, 1, cmd::lpush, "list", "Prepends one or more elements to a list, creating it when needed."},
  {"rpush", -3, W | M | F, 1, 1, 1, cmd::rpush, "list", "Appends one or more elements to a list, creating it when needed."},
  {"lpushx", -3, W | M | F, 1, 1, 1, cmd::lpushx, "list", "Prepends elements to a list only when the list exists."},
  {"rpushx", -3, W | M | F, 1, 1, 1, cmd::rpushx, "list", "Appends elements to a list only when the list exists."},
  {"lpop", -2, W | F, 1, 1, 1, cmd::lpop, "list", "Removes and returns the first elements of a list."},
  {"rpop", -2, W | F, 1, 1, 1, cmd::rpop, "list", "Removes and returns the last elements of a list."},
  {"llen", 2, R | F, 1, 1, 1, cmd::llen, "list", "Returns the length of a list."},
  {"lrange", 4, R, 1, 1, 1, cmd::lrange, "list", "Returns a range of elements of a list."},
  {"lindex", 3, R, 1, 1, 1, cmd::lindex, "list", "Returns an element of a list by its index."},
  {"lset", 4, W | M, 1, 1, 1, cmd::lset, "list", "Sets the value of an element of a list by its index."},
  {"linsert", 5, W | M, 1, 1, 1, cmd::linsert, "list", "Inserts an element before or after another element of a list."},
  {"lrem", 4, W, 1, 1, 1, cmd::lrem, "list", "Removes elements equal to a value from a list."},
  {"ltrim", 4, W, 1, 1, 1, cmd::ltrim, "list", "Removes the elements of a list outside a range."},
  {"lpos", -3, R, 1, 1, 1, cmd::lpos, "list", "Returns the index of matching elements of a list."},
  {"lmove", 5, W | M, 1, 2, 1, cmd::lmove, "list", "Pops an element from one end of a list and pushes it to another list."},
  {"rpoplpush", 3, W | M, 1, 2, 1, cmd::rpoplpush, "list", "Pops the last element of a list and pushes it to the head of another."},
  {"lmpop", -4, W, 0, 0, 0, cmd::lmpop, "list", "Pops elements from the first non-empty list of several.", Split::kNone, 1},
  // sorted sets
  {"zadd", -4, W | M | F, 1, 1, 1, cmd::zadd, "sorted-set", "Adds members to a sorted set, or updates their scores."},
  {"zincrby", 4, W | M | F, 1, 1, 1, cmd::zincrby, "sorted-set", "Increments the score of a member of a sorted set."},
  {"zscore", 3, R | F, 1, 1, 1, cmd::zscore, "sorted-set", "Returns the score of a member of a sorted set."},
  {"zmscore", -3, R | F, 1, 1, 1, cmd::zmscore, "sorted-set", "Returns the scores of several members of a sorted set."},
  {"zcard", 2, R | F, 1, 1, 1, cmd::zcard, "sorted-set", "Returns the number of members of a sorted set."},
  {"zrank", -3, R | F, 1, 1, 1, cmd::zrank, "sorted-set", "Returns the rank of a member in ascending order of score."},
  {"zrevrank", -3, R | F, 1, 1, 1, cmd::zrevrank, "sorted-set", "Returns the rank of a member in descending order of score."},
  {"zrem", -3, W | F, 1, 1, 1, cmd::zrem, "sorted-set", "Removes members from a sorted set."},
  {"zrange", -4, R, 1, 1, 1, cmd::zrange, "sorted-set", "Returns members of a sorted set by rank, score or lexicographic range."},
  {"zrangestore", -5, W | M, 1, 2, 1, cmd::zrangestore, "sorted-set", "Stores a range of a sorted set in another key."},
  {"zrevrange", -4, R, 1, 1, 1, cmd::zrevrange, "sorted-set", "Returns members of a sorted set by rank, highest first."},
  {"zrangebyscore", -4, R, 1, 1, 1, cmd::zrangebyscore, "sorted-set", "Returns members of a sorted set within a score range."},
  {"zrevrangebyscore", -4, R, 1, 1, 1, cmd::zrevrangebyscore, "sorted-set", "Returns members within a score range, highest first."},
  {"zrangebylex", -4, R, 1, 1, 1, cmd::zrangebylex, "sorted-set", "Returns members of a sorted set within a lexicographic range."},
  {"zrevrangebylex", -4, R, 1, 1, 1, cmd::zrevrangebylex, "sorted-set", "Returns members within a lexicographic range, in reverse."},
  {"zcount", 4, R | F, 1, 1, 1, cmd::zcount, "sorted-set", "Counts the members of a sorted set within a score range."},
  {"zlexcount", 4, R | F, 1, 1, 1, cmd::zlexcount, "sorted-set", "Counts the members of a sorted set within a lexicographic range."},
  {"zremrangebyrank", 4, W, 1, 1, 1, cmd::zremrangebyrank, "sorted-set", "Removes the members of a sorted set within a rank range."},
  {"zremrangebyscore", 4, W, 1, 1, 1, cmd::zremrangebyscore, "sorted-set", "Removes the members of a sorted set within a score range."},
  {"zremrangebylex", 4, W, 1, 1, 1, cmd::zremrangebylex, "sorted-set", "Removes the members of a sorted set within a lexicographic range."},
  {"zpopmin", -2, W | F, 1, 1, 1, cmd::zpopmin, "sorted-set", "Removes and returns the members with the lowest scores."},
  {"zpopmax", -2, W | F, 1, 1, 1, cmd::zpopmax, "sorted-set", "Removes and returns the members with the highest scores."},
  {"zmpop", -4, W, 0, 0, 0, cmd::zmpop, "sorted-set", "Pops members from the first non-empty sorted set of several.", Split::kNone, 1},
  {"zunion", -3, R, 0, 0, 0, cmd::zunion, "sorted-set", "Returns the union of several sorted sets.", Split::kNone, 1},
  {"zinter", -3, R, 0, 0, 0, cmd::zinter, "sorted-set", "Returns the intersection of several sorted sets.", Split::kNone, 1},
  {"zdiff", -3, R, 0, 0, 0, cmd::zdiff, "sorted-set", "Returns the difference of several sorted sets.", Split::kNone, 1},
  {"zunionstore", -4, W | M, 1, 1, 1, cmd::zunionstore, "sorted-set", "Stores the union of several sorted sets in a key.", Split::kNone, 2},
  {"zinterstore", -4, W | M, 1, 1, 1, cmd::zinterstore, "sorted-set", "Stores the intersection of several sorted sets in a key.", Split::kNone, 2},
  {"zdiffstore", -4, W | M, 1, 1, 1, cmd::zdiffstore, "sorted-set", "Stores the difference of several sorted sets in a key.", Split::kNone, 2},
  {"zintercard", -3, R, 0, 0, 0, cmd::zintercard, "sorted-set", "Returns the number of members in the intersection of sorted sets.", Split::kNone, 1},
  {"zrandmember", -2, R, 1, 1, 1, cmd::zrandmember, "sorted-set", "Returns random members of a sorted set."},
  {"zscan", -3, R, 1, 1, 1, cmd::zscan, "sorted-set", "Iterates over the members and scores of a sorted set."},
  // streams (stream_commands.cc). XREAD/XREADGROUP keys follow STREAMS; with BLOCK the session waits.
  {"xadd", -5, W | M | F, 1, 1, 1, cmd::xadd, "stream", "Appends an entry to a stream, creating it when absent."},
  {"xrange", -4, R, 1, 1, 1, cmd::xrange, "stream", "Returns the entries of a stream within a range of ids."},
  {"xrevrange", -4, R, 1, 1, 1, cmd::xrevrange, "stream", "Returns the entries of a stream within a range of ids, newest first."},
  {"xlen", 2, R | F, 1, 1, 1, cmd::xlen, "stream", "Returns the number of entries of a stream."},
  {"xdel", -3, W | F, 1, 1, 1, cmd::xdel, "stream", "Deletes entries of a stream by id."},
  {"xtrim", -4, W, 1, 1, 1, cmd::xtrim, "stream", "Deletes the oldest entries of a stream (MAXLEN or MINID)."},
  {"xsetid", -3, W | M | F, 1, 1, 1, cmd::xsetid, "stream", "Sets the last id (and counters) of a stream."},
  {"xread", -4, R | B, 0, 0, 0, cmd::xread, "stream", "Returns entries after given ids from streams, waiting for some with BLOCK.", Split::kNone, 0, 1},
  {"xreadgroup", -7, W | B, 0, 0, 0, cmd::xreadgroup, "stream", "Returns entries for a consumer of a group, waiting for some with BLOCK.", Split::kNone, 0, 4},
  {"xgroup", -2, W, 2, 2, 1, cmd::xgroup, "stream", "XGROUP CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP."},
  {"xack", -4, W | F, 1, 1, 1, cmd::xack, "stream", "Acknowledges entries of a group's pending list."},
  {"xpending", -3, R, 1, 1, 1, cmd::xpending, "stream", "Returns the pending entries of a group."},
  {"xclaim", -6, W | F, 1, 1, 1, cmd::xclaim, "stream", "Takes pending entries over for another consumer."},
  {"xautoclaim", -6, W | F, 1, 1, 1, cmd::xautoclaim, "stream", "Takes over pending entries idle for long enough, walking with a cursor."},
  {"xinfo", -2, R, 2, 2, 1, cmd::xinfo, "stream", "XINFO STREAM, GROUPS, CONSUMERS, HELP."},
  {"x.lastids", -2, R | I, 1, -1, 1, cmd::xlastids, "stream", "The last ids of streams: what XREAD's $ is when a wait begins."},
  // transactions (internal: what EXEC and WATCH become; tx_commands.cc)
  {"tx.write", -4, W | M | I | X, 1, 1, 1, cmd::tx, "transactions", "EXEC of a transaction with a write: its commands at once."},
  {"tx.read", -4, R | I | X, 1, 1, 1, cmd::tx, "transactions", "EXEC of a read-only transaction: its commands at once."},
  {"tx.cas", -2, R | I, 1, -1, 1, cmd::tx_cas, "transactions", "WATCH: the CAS values of keys (0: absent)."},
  // memcached requests, translated (internal)
  {"mc.get", -2, R | F | I, 1, -1, 1, cmd::mc_get, "memcached", "memcached get/gets and mg: item records.", Split::kKeysArray},
  {"mc.gat", -3, W | F | I, 2, -1, 1, cmd::mc_gat, "memcached", "memcached gat/gats and mg T: touch, then item records.", Split::kKeysArray},
  {"mc.store", 7, W | M | I, 1, 1, 1, cmd::mc_store, "memcached", "memcached set/add/replace/append/prepend/cas and ms."},
  {"mc.delete", -2, W | F | I, 1, 1, 1, cmd::mc_delete, "memcached", "memcached delete and md."},
  {"mc.arith", -4, W | M | F | I, 1, 1, 1, cmd::mc_arith, "memcached", "memcached incr/decr and ma."},
  {"mc.touch", 3, W | F | I, 1, 1, 1, cmd::mc_touch, "memcached", "memcached touch."},
};
// clang-format on

constexpr size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);
constexpr size_t kIndexSlots = 512;  // power of two, at least twice the command count
static_assert(kIndexSlots >= 2 * kCommandCount);
constexpr size_t kNameBytesMax = 16;  // longer names cannot be data commands

// ASCII only (command names are ASCII); std::tolower would consult the locale per character.
inline unsigned char lower(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 'A' && u <= 'Z' ? static_cast<unsigned char>(u + 32) : u;
}

uint32_t name_hash(std::string_view s) {
  uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ lower(c)) * 16777619u;
  return h;
}

struct Index {
  std::array<int16_t, kIndexSlots> slots;
  Index() {
    slots.fill(-1);
    for (size_t i = 0; i < kCommandCount; ++i) {
      TALLY_ASSERT(std::strlen(kCommands[i].name) <= kNameBytesMax);
      size_t b = name_hash(kCommands[i].name) & (kIndexSlots - 1);
      while (slots[b] != -1) b = (b + 1) & (kIndexSlots - 1);
      slots[b] = static_cast<int16_t>(i);
    }
  }
};

const Index& index() {
  static const Index idx;
  return idx;
}

bool equals_nocase(const char* lower_name, std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower_name[i] == '\0' || static_cast<unsigned char>(lower_name[i]) != lower(s[i])) return false;
  }
  return lower_name[s.size()] == '\0';
}

}  // namespace

const CommandSpec* find_data_command(std::string_view name) {
  if (name.empty() || name.size() > kNameBytesMax) return nullptr;
  const Index& idx = index();
  size_t b = name_hash(name) & (kIndexSlots - 1);
  for (size_t probes = 0; probes < kIndexSlots; ++probes, b = (b + 1) & (kIndexSlots - 1)) {
    const int16_t i = idx.slots[b];
    if (i < 0) return nullptr;
    if (equals_nocase(kCommands[i].name, name)) return &kCommands[i];
  }
  return nullptr;
}

std::span<const CommandSpec> data_commands() { return {kCommands, kCommandCount}; }

}  // namespace tally::server
