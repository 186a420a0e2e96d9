"""tallyd driven by real Redis clients: redis-py, redis-cli (RESP2 and RESP3) and redis-benchmark."""
import subprocess
import time
import unittest

import redis

from harness import Raw, Tallyd, resp


class RedisPyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Tallyd(threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.r = redis.Redis(port=self.server.port, decode_responses=True)
        self.r.flushall()

    def test_strings(self):
        r = self.r
        self.assertTrue(r.set("a", "1"))
        self.assertEqual(r.get("a"), "1")
        self.assertEqual(r.incr("a"), 2)
        self.assertEqual(r.incrby("a", 10), 12)
        self.assertEqual(r.decr("a"), 11)
        self.assertAlmostEqual(r.incrbyfloat("a", 0.5), 11.5)
        self.assertEqual(r.append("s", "hello"), 5)
        self.assertEqual(r.append("s", " world"), 11)
        self.assertEqual(r.getrange("s", 0, 4), "hello")
        self.assertEqual(r.strlen("s"), 11)
        self.assertIsNone(r.set("a", "x", nx=True))
        self.assertTrue(r.set("a", "x", xx=True))
        self.assertEqual(r.getset("a", "y"), "x")
        self.assertEqual(r.getdel("a"), "y")
        self.assertIsNone(r.get("a"))
        with self.assertRaises(redis.ResponseError) as cm:
            r.incr("s")
        self.assertIn("not an integer", str(cm.exception))

    def test_multi_key_across_shards(self):
        r = self.r
        keys = ["k%d" % i for i in range(200)]  # spread over every shard
        self.assertTrue(r.mset({k: k.upper() for k in keys}))
        self.assertEqual(r.mget(keys), [k.upper() for k in keys])
        self.assertEqual(r.mget(["k1", "nope", "k2"]), ["K1", None, "K2"])
        self.assertEqual(r.exists(*keys, "nope"), 200)
        self.assertEqual(r.dbsize(), 200)
        self.assertEqual(sorted(r.keys("k1*")), sorted(k for k in keys if k.startswith("k1")))
        self.assertEqual(sorted(r.scan_iter(count=7)), sorted(keys))
        self.assertIn(r.randomkey(), keys)
        self.assertEqual(r.delete(*keys[:50]), 50)
        self.assertEqual(r.dbsize(), 150)
        self.assertTrue(r.flushall())
        self.assertEqual(r.dbsize(), 0)

    def test_ttl(self):
        r = self.r
        r.set("t", "v", px=150)
        self.assertGreater(r.pttl("t"), 0)
        self.assertEqual(r.ttl("nokey"), -2)
        r.set("p", "v")
        self.assertEqual(r.ttl("p"), -1)
        self.assertTrue(r.expire("p", 100))
        self.assertTrue(r.persist("p"))
        self.assertEqual(r.ttl("p"), -1)
        time.sleep(0.3)
        self.assertIsNone(r.get("t"))

    def test_sets_and_hashes(self):
        r = self.r
        self.assertEqual(r.sadd("{s}1", "a", "b", "c"), 3)
        self.assertEqual(r.sadd("{s}2", "b", "c", "d"), 3)
        self.assertEqual(r.sinter("{s}1", "{s}2"), {"b", "c"})
        self.assertEqual(r.sunion("{s}1", "{s}2"), {"a", "b", "c", "d"})
        self.assertEqual(r.sdiff("{s}1", "{s}2"), {"a"})
        self.assertEqual(r.sinterstore("{s}3", ["{s}1", "{s}2"]), 2)
        self.assertTrue(r.sismember("{s}3", "b"))
        self.assertEqual(r.scard("{s}1"), 3)
        self.assertEqual(r.hset("h", mapping={"f1": "v1", "f2": "v2"}), 2)
        self.assertEqual(r.hgetall("h"), {"f1": "v1", "f2": "v2"})
        self.assertEqual(r.hincrby("h", "n", 5), 5)
        self.assertEqual(r.hlen("h"), 3)
        self.assertEqual(r.hmget("h", "f1", "zz"), ["v1", None])
        with self.assertRaises(redis.ResponseError) as cm:
            r.sadd("h", "x")
        self.assertTrue(str(cm.exception).startswith("WRONGTYPE"))

    def test_lists_and_sorted_sets(self):
        r = self.r
        self.assertEqual(r.rpush("{q}", "a", "b", "c"), 3)
        self.assertEqual(r.lpush("{q}", "z"), 4)
        self.assertEqual(r.lrange("{q}", 0, -1), ["z", "a", "b", "c"])
        self.assertEqual(r.lpop("{q}", 2), ["z", "a"])
        self.assertEqual(r.linsert("{q}", "BEFORE", "c", "x"), 3)
        self.assertEqual(r.lpos("{q}", "c"), 2)
        # Multi-key commands take keys of one slot (hash tags), as Redis Cluster asks.
        self.assertEqual(r.lmove("{q}", "{q}other", "LEFT", "RIGHT"), "b")
        self.assertEqual(r.rpoplpush("{q}", "{q}other"), "c")
        self.assertEqual(r.lrange("{q}other", 0, -1), ["c", "b"])
        self.assertEqual(r.lmpop(2, "{q}missing", "{q}other", direction="RIGHT", count=5), ["{q}other", ["b", "c"]])
        self.assertEqual(r.exists("{q}other"), 0)  # emptied lists are deleted
        self.assertEqual(r.zadd("{b}board", {"ann": 30, "bob": 10, "cid": 20}), 3)
        self.assertEqual(r.zincrby("{b}board", 25, "bob"), 35.0)
        self.assertEqual(r.zrange("{b}board", 0, -1, desc=True, withscores=True),
                         [("bob", 35.0), ("ann", 30.0), ("cid", 20.0)])
        self.assertEqual(r.zrank("{b}board", "cid"), 0)
        self.assertEqual(r.zrevrank("{b}board", "cid"), 2)
        self.assertEqual(r.zrangebyscore("{b}board", "(20", "+inf"), ["ann", "bob"])
        self.assertEqual(r.zcount("{b}board", 20, 30), 2)
        self.assertEqual(r.zadd("{b}board2", {"ann": 1, "dan": 5}), 2)
        self.assertEqual(r.zunionstore("{b}sum", ["{b}board", "{b}board2"]), 4)
        self.assertEqual(r.zscore("{b}sum", "ann"), 31.0)
        self.assertEqual(r.zinter(["{b}board", "{b}board2"], withscores=True), [("ann", 31.0)])
        self.assertEqual(r.zpopmin("{b}board"), [("cid", 20.0)])
        self.assertEqual(r.type("{b}board"), "zset")
        self.assertEqual(r.type("{q}"), "list")
        with self.assertRaises(redis.ResponseError) as cm:
            r.zadd("{q}", {"x": 1})
        self.assertTrue(str(cm.exception).startswith("WRONGTYPE"))
        with self.assertRaises(redis.ResponseError):
            r.zadd("{b}board", {"x": float("nan")})
        raw = Raw(self.server.port)
        # COMMAND GETKEYS knows the destination before numkeys (RedisCluster routes by it).
        raw.send(resp("COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "a", "b"))
        self.assertEqual(raw.read_until(b"b\r\n"), b"*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n")
        # RESP3: scores are doubles, WITHSCORES pairs are nested; RESP2 has them flat, as strings.
        raw.send(resp("ZRANGE", "{b}board", "0", "0", "WITHSCORES"))
        self.assertEqual(raw.read_until(b"30\r\n"), b"*2\r\n$3\r\nann\r\n$2\r\n30\r\n")
        raw.send(resp("HELLO", "3"))
        raw.read_until(b"modules\r\n*0\r\n")
        raw.send(resp("ZRANGE", "{b}board", "0", "0", "WITHSCORES"))
        self.assertEqual(raw.read_until(b",30\r\n"), b"*1\r\n*2\r\n$3\r\nann\r\n,30\r\n")
        raw.send(resp("ZSCORE", "{b}board", "bob"))
        self.assertEqual(raw.read_until(b"\r\n"), b",35\r\n")
        raw.close()

    def test_encoding_thresholds_are_accepted_and_reported(self):
        r = self.r
        self.assertTrue(r.config_set("hash-max-ziplist-entries", 64))
        self.assertEqual(r.config_get("hash-max-listpack-entries"), {"hash-max-listpack-entries": "64"})
        self.assertTrue(r.config_set("list-max-ziplist-size", -3))
        self.assertEqual(r.config_get("list-max-listpack-size")["list-max-listpack-size"], "-3")
        self.assertEqual(r.config_get("zset-max-*-entries"),
                         {"zset-max-listpack-entries": "128", "zset-max-ziplist-entries": "128"})
        self.assertEqual(r.config_get("set-max-intset-entries")["set-max-intset-entries"], "512")
        with self.assertRaises(redis.ResponseError) as cm:
            r.config_set("set-max-intset-entries", -1)
        self.assertIn("set-max-intset-entries", str(cm.exception))
        r.config_set("hash-max-listpack-entries", 128)
        r.config_set("list-max-listpack-size", -2)

    def test_pipeline_keeps_order_across_shards(self):
        p = self.r.pipeline(transaction=False)
        for i in range(500):
            p.set("p%d" % i, i)
            p.get("p%d" % ((i * 7) % 500))
            p.incr("ctr")
        out = p.execute()
        for i in range(500):
            self.assertTrue(out[3 * i])
            j = (i * 7) % 500
            self.assertEqual(out[3 * i + 1], str(j) if j <= i else None)
            self.assertEqual(out[3 * i + 2], i + 1)

    def test_server_commands(self):
        r = self.r
        self.assertTrue(r.ping())
        self.assertEqual(r.echo("hi"), "hi")
        info = r.info()
        self.assertIn("redis_version", info)
        self.assertEqual(info["connected_clients"] >= 1, True)
        self.assertIn("cmdstat_ping", r.info("commandstats"))
        self.assertEqual(r.config_get("maxmemory-policy"), {"maxmemory-policy": "noeviction"})
        self.assertTrue(r.config_set("maxmemory-policy", "allkeys-lru"))
        self.assertEqual(r.config_get("maxmemory-policy"), {"maxmemory-policy": "allkeys-lru"})
        r.config_set("maxmemory-policy", "noeviction")
        self.assertTrue(r.client_setname("tester"))
        self.assertEqual(r.client_getname(), "tester")
        names = [c["name"] for c in r.client_list()]
        self.assertIn("tester", names)
        cmds = r.command()  # redis-py parses every COMMAND entry (its cluster client relies on it)
        self.assertGreater(len(cmds), 80)
        self.assertEqual(cmds["get"]["arity"], 2)
        self.assertEqual(cmds["mset"]["step_count"], 2)
        raw = Raw(self.server.port)
        raw.send(resp("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"))
        self.assertEqual(raw.read_until(b"$1\r\nb\r\n"), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
        t = r.time()
        self.assertGreater(t[0], 1700000000)
        with self.assertRaises(redis.ResponseError) as cm:
            r.execute_command("NOSUCHCOMMAND", "x")
        self.assertIn("unknown command", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            r.execute_command("GET")
        self.assertIn("wrong number of arguments for 'get' command", str(cm.exception))

    def test_client_kill(self):
        victim = redis.Redis(port=self.server.port)
        victim.client_setname("victim")
        vid = victim.client_id()
        self.assertEqual(self.r.client_kill_filter(_id=vid), 1)
        time.sleep(0.1)
        names = [c["name"] for c in self.r.client_list()]
        self.assertNotIn("victim", names)


class BackPressureTest(unittest.TestCase):
    def test_pipeline_beyond_inflight_limit_keeps_order(self):
        # With 4 replies in flight at most, reading pauses and resumes many times; every reply must
        # still arrive, in order, without the client sending anything more.
        with Tallyd("--pipeline-inflight-max", "4", threads=2) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            p = r.pipeline(transaction=False)
            for i in range(3000):
                p.set("bp%d" % i, i)
                p.get("bp%d" % (i // 2))
            out = p.execute()
            self.assertEqual(out[0::2], [True] * 3000)
            self.assertEqual(out[1::2], [str(i // 2) for i in range(3000)])


class RedisCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Tallyd(threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def cli(self, *args, proto=None):
        cmd = ["redis-cli", "--no-raw", "-p", str(self.server.port)]
        if proto == 3:
            cmd.append("-3")
        return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=20).stdout

    def test_resp2_and_resp3(self):
        self.assertEqual(self.cli("set", "k", "v").strip(), "OK")
        self.assertEqual(self.cli("get", "k").strip(), '"v"')
        self.cli("hset", "h", "a", "1")
        out3 = self.cli("hgetall", "h", proto=3)
        self.assertIn('1# "a" => "1"', out3)  # a RESP3 map, as redis-cli prints one
        out2 = self.cli("hgetall", "h")
        self.assertEqual(out2.split(), ['1)', '"a"', '2)', '"1"'])
        self.assertIn("(nil)", subprocess.run(["redis-cli", "--no-raw", "-3", "-p", str(self.server.port), "get", "none"],
                                              capture_output=True, text=True).stdout)

    def test_hello3_raw(self):
        c = Raw(self.server.port)
        c.send(resp("HELLO", "3"))
        head = c.read_until(b"\r\n")
        self.assertEqual(head, b"%7\r\n")
        c.send(resp("PING"))
        c.read_until(b"+PONG\r\n")
        c.send(resp("HSET", "h3", "f", "v") + resp("HGETALL", "h3") + resp("GET", "missing"))
        c.read_until(b":1\r\n")
        self.assertEqual(c.read_until(b"$1\r\nv\r\n"), b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n")
        self.assertEqual(c.read_until(b"\r\n"), b"_\r\n")
        c.close()

    def test_redis_benchmark_short(self):
        out = subprocess.run(["redis-benchmark", "-p", str(self.server.port), "-t", "set,get,incr,mset",
                              "-n", "5000", "-c", "10", "-P", "4", "-q"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        for t in ("SET", "GET", "INCR", "MSET"):
            self.assertRegex(out.stdout, t + r"[^\n]*: [0-9.]+ requests per second")
        self.assertNotIn("ERR", out.stdout + out.stderr)


class AuthTest(unittest.TestCase):
    def test_requirepass(self):
        with Tallyd("--requirepass", "s3cret", threads=1) as srv:
            c = Raw(srv.port)
            c.send(resp("GET", "a"))
            self.assertEqual(c.read_until(b"\r\n"), b"-NOAUTH Authentication required.\r\n")
            c.send(resp("AUTH", "wrong"))
            self.assertTrue(c.read_until(b"\r\n").startswith(b"-WRONGPASS"))
            c.send(resp("AUTH", "s3cret") + resp("SET", "a", "1") + resp("GET", "a"))
            self.assertEqual(c.read_until(b"$1\r\n1\r\n"), b"+OK\r\n+OK\r\n$1\r\n1\r\n")
            r = redis.Redis(port=srv.port, password="s3cret")
            self.assertEqual(r.get("a"), b"1")
            # HELLO with AUTH authenticates and switches protocol in one step.
            c2 = Raw(srv.port)
            c2.send(resp("HELLO", "3", "AUTH", "default", "s3cret"))
            self.assertEqual(c2.read_until(b"\r\n"), b"%7\r\n")

    def test_unauthenticated_client_cannot_make_server_allocate(self):
        with Tallyd("--requirepass", "pw", threads=1) as srv:
            c = Raw(srv.port)
            c.send(b"*1000000\r\n")
            self.assertIn(b"Protocol error", c.read_until(b"\r\n"))
            self.assertTrue(c.closed_by_peer())
            c = Raw(srv.port)
            c.send(b"*2\r\n$100000000\r\n")
            self.assertIn(b"Protocol error", c.read_until(b"\r\n"))
            self.assertTrue(c.closed_by_peer())


if __name__ == "__main__":
    unittest.main(verbosity=2)
