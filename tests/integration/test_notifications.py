"""Keyspace notifications (notify-keyspace-events) checked against redis-server: the same commands
run on both, a pattern subscriber on each collects __keyspace@0__/__keyevent@0__ messages, and the two
lists must be equal (strings, TTLs, renames, lists and hashes emptied by pops, sets, sorted sets,
streams, COPY, SETBIT and BITFIELD, SORT STORE, a key that expires; with n and m, new keys and read
misses). Also: nothing is published while the setting is off, and a class
left out is not published."""
import shutil
import tempfile
import time
import unittest

import redis

from harness import RedisServer, Tallyd

SCRIPT = [
    ("SET", "{k}a", "1"), ("SET", "{k}a", "2", "EX", "100"), ("SET", "{k}k", "v", "KEEPTTL"), ("INCR", "{k}n"),
    ("INCRBY", "{k}n", "5"), ("APPEND", "{k}a", "x"), ("DEL", "{k}a", "{k}missing"), ("EXPIRE", "{k}n", "100"),
    ("PERSIST", "{k}n"), ("RENAME", "{k}n", "{k}m"), ("LPUSH", "{k}l", "x", "y"), ("RPOP", "{k}l"),
    ("RPOP", "{k}l"), ("RPOP", "{k}l"), ("HSET", "{k}h", "f", "v", "g", "w"), ("HDEL", "{k}h", "f"),
    ("HDEL", "{k}h", "g"), ("SADD", "{k}s", "1", "2"), ("SREM", "{k}s", "1"), ("SADD", "{k}s", "2"),
    ("ZADD", "{k}z", "1", "a"), ("ZINCRBY", "{k}z", "2", "a"), ("ZREM", "{k}z", "a"),
    ("XADD", "{k}x", "1-1", "f", "v"), ("COPY", "{k}m", "{k}m2"), ("SETEX", "{k}t", "100", "v"),
    ("GETDEL", "{k}t"), ("SET", "{k}e", "1", "PX", "50"), ("SETBIT", "{k}b", "3", "1"),
    ("BITFIELD", "{k}b", "INCRBY", "u8", "0", "1", "GET", "u4", "0"), ("BITFIELD", "{k}b", "GET", "u8", "0"),
    ("RPUSH", "{k}sl", "3", "1", "2"), ("SORT", "{k}sl"), ("SORT", "{k}sl", "STORE", "{k}sd"),
    ("SORT", "{k}nothing", "STORE", "{k}sd"),
]
# (Not compared: a BITFIELD whose writes all fail under OVERFLOW FAIL but that creates or grows the key.
# redis-server 7.0 stores the zero bytes without an event; tallyd publishes "setbit" because the value
# changed, as the change stream and WATCH must also see it.)


def collect(port, flags, script, settle=0.6):
    r = redis.Redis(port=port, decode_responses=True)
    r.flushall()
    r.config_set("notify-keyspace-events", flags)
    sub = r.pubsub()
    sub.psubscribe("__key*@0__:*")
    deadline = time.monotonic() + 5
    while sub.get_message(timeout=0.1) is None and time.monotonic() < deadline:
        pass  # the psubscribe confirmation
    for cmd in script:
        r.execute_command(*cmd)
    time.sleep(settle)  # "e" expires (PX 50) and is found by active expiry
    r.get("{k}e")
    got = []
    while True:
        m = sub.get_message(timeout=0.3)
        if m is None:
            break
        if m["type"] == "pmessage":
            got.append((m["channel"], m["data"]))
    sub.close()
    r.config_set("notify-keyspace-events", "")
    return got


@unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
class NotificationsTest(unittest.TestCase):
    extra = ("--durability", "none")

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tally-notify-")
        cls.server = Tallyd("--dir", cls.dir, *cls.extra, threads=2)
        cls.server.start()
        cls.redis = RedisServer().start()
        cls.redis_port = cls.redis.port

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_the_same_events_as_redis_server(self):
        want = collect(self.redis_port, "KEA", SCRIPT)
        got = collect(self.server.port, "KEA", SCRIPT)
        self.assertGreater(len(want), 40)
        self.assertIn(("__keyevent@0__:expired", "{k}e"), want)
        self.assertEqual(got, want)

    def test_new_keys_and_key_misses_as_redis_server(self):
        # n ("new" when a write creates a key) and m ("keymiss" when a read finds none) are not in A.
        reads = [("GET", "{k}nothing"), ("MGET", "{k}a2", "{k}nothing2"), ("EXISTS", "{k}no"), ("GET", "{k}a2"),
                 ("LRANGE", "{k}nolist", "0", "-1"), ("HGET", "{k}noh", "f"), ("STRLEN", "{k}gone"),
                 ("ZSCORE", "{k}noz", "m"), ("SMEMBERS", "{k}nos"), ("TYPE", "{k}a2"),
                 ("SUNIONSTORE", "{k}u", "{k}nos1", "{k}s"), ("SUNIONSTORE", "{k}u2", "{k}nos1", "{k}nos2"),
                 ("ZUNIONSTORE", "{k}zu", "2", "{k}noz1", "{k}noz2"), ("BITOP", "OR", "{k}bo", "{k}b", "{k}nob"),
                 ("COPY", "{k}absent", "{k}cx"), ("LMOVE", "{k}nol", "{k}l2", "LEFT", "RIGHT"),
                 ("SINTERCARD", "2", "{k}s", "{k}nos3")]
        script = [("SET", "{k}a2", "v")] + SCRIPT + reads + [("RENAME", "{k}a2", "{k}m"), ("SET", "{k}m", "w")]
        for flags in ("KEA", "KEAnm", "En", "Km"):
            want = collect(self.redis_port, flags, script)
            got = collect(self.server.port, flags, script)
            self.assertEqual(got, want, flags)
            if "n" in flags:
                self.assertIn(("__keyevent@0__:new", "{k}a2"), want)
            if "m" in flags:
                self.assertIn(("__keyspace@0__:{k}nothing", "keymiss"), want)

    def test_moves_pops_and_subcommands_as_redis_server(self):
        # Commands whose events Redis names by what they did: LMOVE/RPOPLPUSH (a push on the
        # destination, then a pop on the source), LMPOP/ZMPOP (by side), SMOVE (srem, then sadd),
        # GETEX PERSIST, XGROUP's subcommands; and a range of other writes.
        script = [
            ("RPUSH", "{k}l", "a", "b", "c", "d"), ("LMOVE", "{k}l", "{k}l2", "LEFT", "RIGHT"),
            ("RPOPLPUSH", "{k}l", "{k}l2"), ("LSET", "{k}l", "0", "z"), ("LINSERT", "{k}l", "BEFORE", "z", "y"),
            ("LTRIM", "{k}l", "0", "1"), ("LREM", "{k}l", "0", "y"), ("LMPOP", "2", "{k}nol", "{k}l", "LEFT", "COUNT", "5"),
            ("LPOP", "{k}l2", "1"), ("LMOVE", "{k}l2", "{k}l2", "LEFT", "LEFT"), ("RPUSH", "{k}l3", "x"),
            ("LMOVE", "{k}l3", "{k}l4", "RIGHT", "LEFT"),
            ("SADD", "{k}s", "a", "b", "c"), ("SMOVE", "{k}s", "{k}s2", "a"), ("SPOP", "{k}s"),
            ("SINTERSTORE", "{k}si", "{k}s", "{k}s2"), ("SDIFFSTORE", "{k}sd", "{k}s", "{k}nos"), ("SREM", "{k}s", "b", "c"),
            ("ZADD", "{k}z", "1", "a", "2", "b", "3", "c"), ("ZPOPMIN", "{k}z"), ("ZREMRANGEBYSCORE", "{k}z", "0", "2"),
            ("ZMPOP", "1", "{k}z", "MAX"), ("ZADD", "{k}z2", "1", "a"), ("ZRANGESTORE", "{k}zr", "{k}z2", "0", "-1"),
            ("ZUNIONSTORE", "{k}zu", "1", "{k}z2"), ("ZINTERSTORE", "{k}zi", "2", "{k}z2", "{k}nz"),
            ("SET", "{k}a", "1"), ("SETRANGE", "{k}a", "2", "xx"), ("INCRBYFLOAT", "{k}f", "1.5"),
            ("GETEX", "{k}a", "EX", "100"), ("GETEX", "{k}a", "PERSIST"), ("PEXPIRE", "{k}a", "100000"),
            ("EXPIREAT", "{k}a", "1"), ("MSET", "{k}m1", "1", "{k}m2", "2"), ("MSETNX", "{k}m3", "3", "{k}m4", "4"),
            ("SETNX", "{k}m1", "x"), ("GETSET", "{k}m1", "y"), ("RENAMENX", "{k}m1", "{k}m2"), ("RENAMENX", "{k}m1", "{k}m9"),
            ("HSET", "{k}h", "a", "1"), ("HINCRBY", "{k}h", "a", "2"), ("HINCRBYFLOAT", "{k}h", "b", "1.5"),
            ("HSETNX", "{k}h", "c", "1"), ("HDEL", "{k}h", "a", "b", "c"),
            ("XADD", "{k}x", "1-1", "f", "v"), ("XADD", "{k}x", "2-1", "f", "v"), ("XDEL", "{k}x", "1-1"),
            ("XTRIM", "{k}x", "MAXLEN", "0"), ("XGROUP", "CREATE", "{k}x", "g", "$"),
            ("XGROUP", "CREATECONSUMER", "{k}x", "g", "c"), ("XGROUP", "DELCONSUMER", "{k}x", "g", "c"),
            ("XGROUP", "SETID", "{k}x", "g", "0"), ("XSETID", "{k}x", "5-0"), ("XGROUP", "DESTROY", "{k}x", "g"),
            ("XGROUP", "CREATE", "{k}x2", "g", "$", "MKSTREAM"),
            ("XADD", "{k}x", "NOMKSTREAM", "*", "f", "v"), ("XADD", "{k}nx", "NOMKSTREAM", "*", "f", "v"),
            ("SET", "{k}u", "1"), ("UNLINK", "{k}u"), ("APPEND", "{k}ap", "x"), ("DECRBY", "{k}d", "3"),
            ("TOUCH", "{k}ap"), ("COPY", "{k}ap", "{k}ap2"), ("COPY", "{k}ap", "{k}ap2", "REPLACE"),
        ]
        want = collect(self.redis_port, "KEAn", script)
        got = collect(self.server.port, "KEAn", script)
        self.assertGreater(len(want), 150)
        self.assertIn(("__keyevent@0__:xgroup-create", "{k}x"), want)
        self.assertEqual(got, want)

    def test_classes_and_off(self):
        for flags in ("Kl", "Eg$", "Kx"):
            self.assertEqual(collect(self.server.port, flags, SCRIPT), collect(self.redis_port, flags, SCRIPT), flags)
        self.assertEqual(collect(self.server.port, "", SCRIPT), [])
        r = redis.Redis(port=self.server.port, decode_responses=True)
        for flags in ("KEA", "Elg", "KA", "Ex$"):
            r.config_set("notify-keyspace-events", flags)
            redis.Redis(port=self.redis_port).config_set("notify-keyspace-events", flags)
            self.assertEqual(r.config_get("notify-keyspace-events"),
                             redis.Redis(port=self.redis_port, decode_responses=True).config_get("notify-keyspace-events"))
        with self.assertRaises(redis.ResponseError):
            r.config_set("notify-keyspace-events", "KQ")
        r.config_set("notify-keyspace-events", "")


class DurableNotificationsTest(NotificationsTest):
    extra = ("--durability", "fsync", "--partitions", "16")


if __name__ == "__main__":
    unittest.main()
