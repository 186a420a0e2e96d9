"""tallyd's memcached port driven by pymemcache, libmemcached's tools and raw text/meta commands."""
import subprocess
import time
import unittest

import redis
from pymemcache.client.base import Client

from harness import Raw, Tallyd


class MemcachedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Tallyd(threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.mc = Client(("127.0.0.1", self.server.mc_port), timeout=5)
        self.mc.flush_all(noreply=False)  # ordered before this test's requests on other connections

    def test_storage_commands(self):
        mc = self.mc
        self.assertTrue(mc.set("a", b"1", noreply=False))
        self.assertEqual(mc.get("a"), b"1")
        self.assertFalse(mc.add("a", b"2", noreply=False))
        self.assertTrue(mc.add("b", b"2", noreply=False))
        self.assertTrue(mc.replace("b", b"3", noreply=False))
        self.assertFalse(mc.replace("nope", b"3", noreply=False))
        self.assertTrue(mc.append("b", b"4", noreply=False))
        self.assertTrue(mc.prepend("b", b"0", noreply=False))
        self.assertEqual(mc.get("b"), b"034")
        self.assertEqual(mc.incr("a", 5), 6)
        self.assertEqual(mc.decr("a", 10), 0)
        self.assertIsNone(mc.incr("missing", 1))
        value, cas = mc.gets("b")
        self.assertEqual(value, b"034")
        self.assertTrue(mc.cas("b", b"new", cas, noreply=False))
        self.assertFalse(mc.cas("b", b"newer", cas, noreply=False))
        self.assertTrue(mc.delete("b", noreply=False))
        self.assertFalse(mc.delete("b", noreply=False))
        self.assertTrue(mc.touch("a", 100, noreply=False))

    def test_get_many_across_shards(self):
        keys = ["key%d" % i for i in range(100)]
        for k in keys:
            self.mc.set(k, k.encode())
        got = self.mc.get_many(keys + ["absent"])
        self.assertEqual(got, {k: k.encode() for k in keys})

    def test_expiry(self):
        self.mc.set("short", b"x", expire=1)
        self.assertEqual(self.mc.get("short"), b"x")
        time.sleep(2.1)
        self.assertIsNone(self.mc.get("short"))

    def test_flags_shared_with_resp(self):
        raw = Raw(self.server.mc_port)
        raw.send(b"set shared 42 0 5\r\nhello\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"STORED\r\n")
        raw.send(b"get shared\r\n")
        self.assertEqual(raw.read_until(b"END\r\n"), b"VALUE shared 42 5\r\nhello\r\nEND\r\n")
        r = redis.Redis(port=self.server.port)
        self.assertEqual(r.get("shared"), b"hello")
        r.set("fromredis", "v")
        raw.send(b"get fromredis\r\n")
        self.assertEqual(raw.read_until(b"END\r\n"), b"VALUE fromredis 0 1\r\nv\r\nEND\r\n")

    def test_meta_commands(self):
        raw = Raw(self.server.mc_port)
        raw.send(b"ms mk 2 T0 F7\r\nhi\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"HD\r\n")
        raw.send(b"mg mk v f s Oab\r\n")
        self.assertEqual(raw.read_until(b"hi\r\n"), b"VA 2 f7 s2 Oab\r\nhi\r\n")
        raw.send(b"mg missing v\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"EN\r\n")
        raw.send(b"ma counter N0 J10 v\r\n")
        self.assertEqual(raw.read_until(b"10\r\n"), b"VA 2\r\n10\r\n")
        raw.send(b"ma counter D5 v\r\n")
        self.assertEqual(raw.read_until(b"15\r\n"), b"VA 2\r\n15\r\n")
        raw.send(b"md mk\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"HD\r\n")
        raw.send(b"md mk\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"NF\r\n")
        raw.send(b"mn\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"MN\r\n")

    def test_requests_behind_a_cross_shard_noreply_are_answered(self):
        # flush_all runs on every shard; what the connection sent behind it must still be answered.
        for _ in range(10):
            raw = Raw(self.server.mc_port)
            raw.send(b"flush_all noreply\r\nversion\r\n")
            self.assertTrue(raw.read_until(b"\r\n").startswith(b"VERSION "))
            raw.close()

    def test_errors_resync(self):
        raw = Raw(self.server.mc_port)
        raw.send(b"bogus command\r\nget x\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"ERROR\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"END\r\n")
        raw.send(b"set big 0 0 2000000\r\n" + b"x" * 2000000 + b"\r\nget big\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"SERVER_ERROR object too large for cache\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"END\r\n")
        raw.send(b"set k 0 0 3\r\nabcdef\r\n")
        self.assertEqual(raw.read_until(b"\r\n"), b"CLIENT_ERROR bad data chunk\r\n")

    def test_libmemcached_tools(self):
        servers = "--servers=127.0.0.1:%d" % self.server.mc_port
        subprocess.run(["memcflush", servers], check=True, timeout=20)
        with open("/tmp/tally-memccp-test.txt", "w") as f:
            f.write("file body")
        subprocess.run(["memccp", servers, "/tmp/tally-memccp-test.txt"], check=True, timeout=20)
        out = subprocess.run(["memccat", servers, "tally-memccp-test.txt"], capture_output=True, text=True,
                             timeout=20)
        self.assertEqual(out.stdout.rstrip("\n"), "file body")
        stat = subprocess.run(["memcstat", servers], capture_output=True, text=True, timeout=20)
        self.assertIn("curr_items", stat.stdout)
        ping = subprocess.run(["memcping", servers], timeout=20)
        self.assertEqual(ping.returncode, 0)


class MemcachedAuthTest(unittest.TestCase):
    def test_text_protocol_authentication(self):
        with Tallyd("--requirepass", "pw", threads=1) as srv:
            raw = Raw(srv.mc_port)
            raw.send(b"get a\r\n")
            self.assertEqual(raw.read_until(b"\r\n"), b"CLIENT_ERROR unauthenticated\r\n")
            raw.send(b"set auth 0 0 8\r\nuser bad\r\n")
            self.assertEqual(raw.read_until(b"\r\n"), b"CLIENT_ERROR authentication failure\r\n")
            raw.send(b"set auth 0 0 10\r\ndefault pw\r\n")
            self.assertEqual(raw.read_until(b"\r\n"), b"STORED\r\n")
            raw.send(b"set a 0 0 1\r\nz\r\nget a\r\n")
            self.assertEqual(raw.read_until(b"END\r\n"), b"STORED\r\nVALUE a 0 1\r\nz\r\nEND\r\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
