"""DUMP and RESTORE against redis-server 7: random values of every type (strings of every
length and compressibility, integers of every width, small and large lists, intsets and plain sets,
listpack and plain hashes and sorted sets, streams with deletions, groups, pending entries and
consumers) dumped by one server and restored by the other, both ways,
must read back equal; the option and error replies must match."""
import random
import shutil
import unittest

import redis

from harness import AgainstRedisCase


def value_of(c, k):
    t = c.type(k).decode()
    if t == "string":
        return t, c.get(k)
    if t == "list":
        return t, c.lrange(k, 0, -1)
    if t == "set":
        return t, sorted(c.smembers(k))
    if t == "hash":
        return t, sorted(c.hgetall(k).items())
    if t == "zset":
        return t, c.zrange(k, 0, -1, withscores=True)
    if t == "stream":
        info = c.xinfo_stream(k)
        groups = []
        for g in c.xinfo_groups(k):
            name = g["name"]
            pending = c.xpending_range(k, name, "-", "+", 10000)
            consumers = sorted((x["name"], x["pending"]) for x in c.xinfo_consumers(k, name))
            groups.append((name, g["pending"], g["last-delivered-id"], g.get("entries-read"), g.get("lag"),
                           [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending], consumers))
        return t, (c.xrange(k), info["length"], info["last-generated-id"], info.get("max-deleted-entry-id"),
                   info.get("entries-added"), groups)
    return t, None


def element(rng):
    kind = rng.randrange(8)
    if kind == 0:
        return str(rng.randrange(128))                                  # listpack 7-bit uint
    if kind == 1:
        return str(rng.randrange(-4096, 4096))                          # 13-bit
    if kind == 2:
        return str(rng.choice([1, -1]) * rng.randrange(1 << 15, 1 << 23))  # 24-bit
    if kind == 3:
        return str(rng.choice([1, -1]) * rng.randrange(1 << 31, 1 << 62))  # 64-bit
    if kind == 4:
        return "x" * rng.randrange(64, 5000)                            # 12/32-bit strings, LZF
    if kind == 5:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80)))
    return "m%d" % rng.randrange(1000)


def fill_stream(c, rng, k, size):
    """Entries with the same fields and with others, deletions (tombstones in redis-server's nodes),
    groups with pending entries spread over consumers, some acknowledged, some claimed."""
    ms = rng.randrange(1, 10 ** 12)
    for j in range(size):
        ms += rng.randrange(0, 3)
        fields = {"a": element(rng), "b": str(j)} if rng.randrange(3) else {"x%d" % rng.randrange(3): element(rng)}
        c.xadd(k, fields, id="%d-%d" % (ms, j))
    ids = [eid for eid, _ in c.xrange(k)]
    for eid in rng.sample(ids, len(ids) // 5):
        c.xdel(k, eid)
    for g in range(rng.randrange(0, 3)):
        name = "g%d" % g
        c.xgroup_create(k, name, id="0")
        for consumer in ("c1", "c2", "c3")[: rng.randrange(1, 4)]:
            got = c.xreadgroup(name, consumer, {k: ">"}, count=rng.randrange(1, size + 2))
            delivered = [eid for eid, _ in got[0][1]] if got else []
            if len(delivered) >= 2 and rng.randrange(2):
                c.xack(k, name, *delivered[: len(delivered) // 2])
        pending = c.xpending_range(k, name, "-", "+", 5)
        if pending:
            c.xclaim(k, name, "c9", 0, [pending[0]["message_id"]])


def fill(c, rng, n):
    keys = []
    for i in range(n):
        k = "k%d" % i
        kind = rng.randrange(6)
        size = rng.choice([1, 3, 20, 200, 700])
        if kind == 0:
            c.set(k, element(rng))
        elif kind == 1:
            c.rpush(k, *[element(rng) for _ in range(size)])
        elif kind == 2:
            if rng.randrange(2):
                width = rng.choice([1 << 14, 1 << 30, 1 << 60])  # intsets of 16, 32 and 64 bits
                c.sadd(k, *[rng.randrange(-width, width) for _ in range(size)])
            else:
                c.sadd(k, *[element(rng) for _ in range(size)])
        elif kind == 3:
            c.hset(k, mapping={"f%d" % j: element(rng) for j in range(size)})
        elif kind == 4:
            c.zadd(k, {("m%d" % j): rng.choice([rng.randrange(-1000, 1000), rng.uniform(-1e9, 1e9), 0.5])
                       for j in range(size)})
        else:
            fill_stream(c, rng, k, size)
        keys.append(k)
    return keys


@unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
class DumpRestoreTest(AgainstRedisCase):
    def test_values_move_both_ways(self):
        rng = random.Random(21)
        for c in (self.r, self.t):
            c.flushall()
        moved = 0
        kinds = set()
        for src, dst, name in ((self.r, self.t, "redis->tally"), (self.t, self.r, "tally->redis")):
            keys = fill(src, random.Random(rng.random()), 120)
            for k in keys:
                payload = src.dump(k)
                dst.delete("copy")
                self.assertEqual(dst.restore("copy", 0, payload), b"OK", (name, k))
                value = value_of(src, k)
                self.assertEqual(value_of(dst, "copy"), value, (name, k))
                moved += 1
                kinds.add(value[0])
                if value[0] == "stream" and any(g[5] for g in value[1][5]):
                    kinds.add("stream with pending entries")
            for k in keys:
                src.delete(k)
        self.assertEqual(moved, 240)
        self.assertEqual(kinds, {"string", "list", "set", "hash", "zset", "stream", "stream with pending entries"})

    def test_damaged_payloads_with_a_fitting_checksum_never_break_the_server(self):
        # A client can compute the checksum of any bytes: the parser must refuse, never trust, them.
        def crc64(data):
            crc = 0
            for b in data:
                crc ^= b
                for _ in range(8):
                    crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
            return crc
        rng = random.Random(5)
        self.t.flushall()
        keys = fill(self.t, rng, 40)
        payloads = [self.t.dump(k) for k in keys]
        outcomes = {"ok": 0, "refused": 0}
        for i in range(600):
            body = bytearray(rng.choice(payloads)[:-8])
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(len(body) - 2)  # leave the version
                body[at] = rng.randrange(256)
            if rng.randrange(4) == 0:
                body = body[: rng.randrange(1, len(body) - 2)] + body[-2:]
            payload = bytes(body) + crc64(body).to_bytes(8, "little")
            try:
                self.t.restore("fuzz", 0, payload, replace=True)
                outcomes["ok"] += 1
                value_of(self.t, "fuzz")  # whatever was accepted reads back
            except redis.exceptions.ResponseError:
                outcomes["refused"] += 1
        self.assertTrue(self.t.ping())
        self.assertGreater(outcomes["refused"], 50)
        self.assertGreater(outcomes["ok"], 5)

    def test_options_and_errors_match(self):
        results = []
        for c in (self.r, self.t):
            c.flushall()
            c.set("a", "v")
            c.set("b", "x" * 100)
            good = c.dump("b")
            corrupt = bytearray(good)
            corrupt[2] ^= 1
            newer = bytearray(c.dump("a"))
            newer[-10] = 99  # an RDB version from the future (the checksum no longer fits either)
            got = []
            for args in (("a", 0, good), ("a", -1, good), ("a", "x", good), ("n", 0, b"short"),
                         ("n", 0, bytes(corrupt)), ("n", 0, bytes(newer)), ("a", 0, good, "REPLACE"),
                         ("n2", 0, good, "IDLETIME", "-1"), ("n2", 0, good, "FREQ", "256"),
                         ("n2", 0, good, "IDLETIME", "1", "FREQ", "1"), ("n2", 0, good, "BOGUS"),
                         ("n3", 1, good, "ABSTTL"), ("n4", 100000, good), ("n5", 0, good, "FREQ", "3")):
                try:
                    got.append(repr(c.execute_command("RESTORE", *args)))
                except redis.exceptions.ResponseError as e:
                    got.append("error: " + str(e))
            got.append(repr((c.exists("n3"), c.ttl("n4") > 90, c.ttl("n5"), c.get("a"), c.dump("missing"))))
            # Under an LFU policy FREQ sets the key's access counter, which OBJECT FREQ reads back.
            c.config_set("maxmemory-policy", "allkeys-lfu")
            for key, freq in (("f1", "100"), ("f2", "0"), ("f3", "255")):
                c.execute_command("RESTORE", key, 0, good, "FREQ", freq)
                got.append(repr(c.object("freq", key)))
            c.config_set("maxmemory-policy", "noeviction")
            results.append(got)
        self.assertEqual(results[0], results[1])
        self.assertIn("100", results[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
