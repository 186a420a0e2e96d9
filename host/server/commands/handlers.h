// Handler functions of the data commands, one group per file; table.cc lists them.
// Each takes argv already checked for arity and replies exactly once.
#pragma once

#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "host/server/commands/command.h"

namespace tally::server::cmd {

using Argv = std::span<const std::string_view>;

// string_commands.cc
void get(ExecContext&, Argv);
void set(ExecContext&, Argv);
void setnx(ExecContext&, Argv);
void setex(ExecContext&, Argv);
void psetex(ExecContext&, Argv);
void getset(ExecContext&, Argv);
void getdel(ExecContext&, Argv);
void getex(ExecContext&, Argv);
void mget(ExecContext&, Argv);
void mset(ExecContext&, Argv);
void msetnx(ExecContext&, Argv);
void append(ExecContext&, Argv);
void strlen(ExecContext&, Argv);
void lcs(ExecContext&, Argv);
void getrange(ExecContext&, Argv);
void setrange(ExecContext&, Argv);
void pfadd(ExecContext&, Argv);
void pfcount(ExecContext&, Argv);
void pfmerge(ExecContext&, Argv);
void incr(ExecContext&, Argv);
void decr(ExecContext&, Argv);
void incrby(ExecContext&, Argv);
void decrby(ExecContext&, Argv);
void incrbyfloat(ExecContext&, Argv);

// bit_commands.cc
void setbit(ExecContext&, Argv);
void getbit(ExecContext&, Argv);
void bitcount(ExecContext&, Argv);
void bitpos(ExecContext&, Argv);
void bitfield(ExecContext&, Argv);
void bitfield_ro(ExecContext&, Argv);
void sort(ExecContext&, Argv);
void sort_ro(ExecContext&, Argv);
void dump(ExecContext&, Argv);
void restore(ExecContext&, Argv);
void bitop(ExecContext&, Argv);

// keyspace_commands.cc
void del(ExecContext&, Argv);
void exists(ExecContext&, Argv);
void type(ExecContext&, Argv);
void rename(ExecContext&, Argv);
void renamenx(ExecContext&, Argv);
void copy(ExecContext&, Argv);
void object(ExecContext&, Argv);
void keys(ExecContext&, Argv);
void scan(ExecContext&, Argv);
void randomkey(ExecContext&, Argv);
void dbsize(ExecContext&, Argv);
void flushdb(ExecContext&, Argv);
void expire(ExecContext&, Argv);
void pexpire(ExecContext&, Argv);
void expireat(ExecContext&, Argv);
void pexpireat(ExecContext&, Argv);
void ttl(ExecContext&, Argv);
void pttl(ExecContext&, Argv);
void expiretime(ExecContext&, Argv);
void pexpiretime(ExecContext&, Argv);
void persist(ExecContext&, Argv);
void touch(ExecContext&, Argv);

// set_commands.cc
void sadd(ExecContext&, Argv);
void srem(ExecContext&, Argv);
void smembers(ExecContext&, Argv);
void sismember(ExecContext&, Argv);
void smismember(ExecContext&, Argv);
void scard(ExecContext&, Argv);
void spop(ExecContext&, Argv);
void srandmember(ExecContext&, Argv);
void sinter(ExecContext&, Argv);
void sunion(ExecContext&, Argv);
void sdiff(ExecContext&, Argv);
void sinterstore(ExecContext&, Argv);
void sunionstore(ExecContext&, Argv);
void sdiffstore(ExecContext&, Argv);
void sintercard(ExecContext&, Argv);
void smove(ExecContext&, Argv);
void sscan(ExecContext&, Argv);

// hash_commands.cc
void hset(ExecContext&, Argv);
void hmset(ExecContext&, Argv);
void hsetnx(ExecContext&, Argv);
void hget(ExecContext&, Argv);
void hmget(ExecContext&, Argv);
void hdel(ExecContext&, Argv);
void hlen(ExecContext&, Argv);
void hexists(ExecContext&, Argv);
void hgetall(ExecContext&, Argv);
void hkeys(ExecContext&, Argv);
void hvals(ExecContext&, Argv);
void hincrby(ExecContext&, Argv);
void hincrbyfloat(ExecContext&, Argv);
void hstrlen(ExecContext&, Argv);
void hscan(ExecContext&, Argv);
void hrandfield(ExecContext&, Argv);

// list_commands.cc
void lpush(ExecContext&, Argv);
void rpush(ExecContext&, Argv);
void lpushx(ExecContext&, Argv);
void rpushx(ExecContext&, Argv);
void lpop(ExecContext&, Argv);
void rpop(ExecContext&, Argv);
void llen(ExecContext&, Argv);
void lrange(ExecContext&, Argv);
void lindex(ExecContext&, Argv);
void lset(ExecContext&, Argv);
void linsert(ExecContext&, Argv);
void lrem(ExecContext&, Argv);
void ltrim(ExecContext&, Argv);
void lpos(ExecContext&, Argv);
void lmove(ExecContext&, Argv);
void rpoplpush(ExecContext&, Argv);
void lmpop(ExecContext&, Argv);

// zset_commands.cc
void zadd(ExecContext&, Argv);
void zincrby(ExecContext&, Argv);
void zscore(ExecContext&, Argv);
void zmscore(ExecContext&, Argv);
void zcard(ExecContext&, Argv);
void zrank(ExecContext&, Argv);
void zrevrank(ExecContext&, Argv);
void zrem(ExecContext&, Argv);
void zrange(ExecContext&, Argv);
void zrangestore(ExecContext&, Argv);
void zrevrange(ExecContext&, Argv);
void zrangebyscore(ExecContext&, Argv);
void zrevrangebyscore(ExecContext&, Argv);
void zrangebylex(ExecContext&, Argv);
void zrevrangebylex(ExecContext&, Argv);
void zcount(ExecContext&, Argv);
void zlexcount(ExecContext&, Argv);
void zremrangebyrank(ExecContext&, Argv);
void zremrangebyscore(ExecContext&, Argv);
void zremrangebylex(ExecContext&, Argv);
void zpopmin(ExecContext&, Argv);
void zpopmax(ExecContext&, Argv);
void zmpop(ExecContext&, Argv);

// stream_commands.cc
void xadd(ExecContext&, Argv);
void xrange(ExecContext&, Argv);
void xrevrange(ExecContext&, Argv);
void xlen(ExecContext&, Argv);
void xdel(ExecContext&, Argv);
void xtrim(ExecContext&, Argv);
void xsetid(ExecContext&, Argv);
void xread(ExecContext&, Argv);
void xreadgroup(ExecContext&, Argv);
void xgroup(ExecContext&, Argv);
void xack(ExecContext&, Argv);
void xpending(ExecContext&, Argv);
void xclaim(ExecContext&, Argv);
void xautoclaim(ExecContext&, Argv);
void xinfo(ExecContext&, Argv);
void xlastids(ExecContext&, Argv);
void zunion(ExecContext&, Argv);
void zinter(ExecContext&, Argv);
void zdiff(ExecContext&, Argv);
void zunionstore(ExecContext&, Argv);
void zinterstore(ExecContext&, Argv);
void zdiffstore(ExecContext&, Argv);
void zintercard(ExecContext&, Argv);
void zrandmember(ExecContext&, Argv);
void zscan(ExecContext&, Argv);

// tx_commands.cc (internal: EXEC's one command, and WATCH's CAS probe)
void tx(ExecContext&, Argv);
void tx_cas(ExecContext&, Argv);
// Splits tx's arguments into the watched keys with their CAS values and the queued commands; false
// when they are malformed. Either output may be null.
bool tx_parse(Argv argv, std::vector<std::pair<std::string_view, uint64_t>>* watched, std::vector<Argv>* commands);

// memcache_commands.cc (internal: the forms memcached requests become)
void mc_get(ExecContext&, Argv);
void mc_gat(ExecContext&, Argv);
void mc_store(ExecContext&, Argv);
void mc_delete(ExecContext&, Argv);
void mc_arith(ExecContext&, Argv);
void mc_touch(ExecContext&, Argv);

}  // namespace tally::server::cmd
