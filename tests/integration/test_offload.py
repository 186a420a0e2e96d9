"""The offload engine inside tallyd: multi-key commands partitioned as batches, TALLY DIGEST built
from checksum, partition and merkle batches, the counters in INFO and /metrics, and the backend
configuration (an absent backend is a note, an unknown one an error)."""
import random
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import redis

from harness import TALLYD, Tallyd


def offload_info(r):
    """INFO offload: redis-py parses 'offload_<op>_<backend>:k=v,...' lines into dicts."""
    return r.info("offload")


def counters(info, op, backend="cpu"):
    value = info.get("offload_%s_%s" % (op, backend))
    return value if isinstance(value, dict) else {"batches": 0, "items": 0}


def load(r, rng, order):
    """The same dataset written in the given key order: strings, a big string, sets and hashes."""
    pipe = r.pipeline(transaction=False)
    for i in order:
        kind = i % 4
        if kind == 0:
            pipe.set("str:%d" % i, "value-%d" % i)
        elif kind == 1:
            members = ["m%d" % j for j in range(i % 7 + 1)]
            rng.shuffle(members)
            pipe.sadd("set:%d" % i, *members)
        elif kind == 2:
            fields = [("f%d" % j, "v%d-%d" % (i, j)) for j in range(i % 5 + 1)]
            rng.shuffle(fields)
            for f, v in fields:
                pipe.hset("hash:%d" % i, f, v)
        else:
            pipe.set("{tag}:%d" % i, "x" * (i * 997 % 300000))  # values up to ~300 KB: several chunks
    pipe.execute()


class DigestTest(unittest.TestCase):
    def test_same_data_same_digest_whatever_the_shards_and_order(self):
        rng = random.Random(7)
        keys = list(range(400))
        order_a = keys[:]
        order_b = keys[:]
        rng.shuffle(order_b)
        with Tallyd(threads=1) as one, Tallyd(threads=2) as two:
            r1 = redis.Redis(port=one.port, decode_responses=True)
            r2 = redis.Redis(port=two.port, decode_responses=True)
            self.assertEqual(r1.execute_command("TALLY", "DIGEST"), "0" * 16)
            load(r1, rng, order_a)
            load(r2, rng, order_b)
            d1 = r1.execute_command("TALLY", "DIGEST")
            d2 = r2.execute_command("TALLY", "DIGEST")
            self.assertRegex(d1, "^[0-9a-f]{16}$")
            self.assertNotEqual(d1, "0" * 16)
            self.assertEqual(d1, d2)
            tree1 = r1.execute_command("TALLY", "DIGEST", "TREE")
            tree2 = r2.execute_command("TALLY", "DIGEST", "TREE")
            self.assertEqual(len(tree1), 16)
            self.assertEqual(tree1, tree2)
            self.assertEqual(sum(int(row[2]) for row in tree1), 400)
            self.assertEqual([int(row[0]) for row in tree1], list(range(0, 16384, 1024)))

            # Each kind of change moves the digest, and only the slot range of the changed key.
            for change, undo in [
                (lambda r: r.set("str:0", "value-0!"), lambda r: r.set("str:0", "value-0")),
                (lambda r: r.srem("set:1", "m0"), lambda r: r.sadd("set:1", "m0")),
                (lambda r: r.hset("hash:2", "f0", "other"), lambda r: r.hset("hash:2", "f0", "v2-0")),
                (lambda r: r.hset("hash:2", "f9", "v2-0"), lambda r: r.hdel("hash:2", "f9")),
                (lambda r: r.expireat("str:4", 4102444800), lambda r: r.persist("str:4")),
                (lambda r: r.append("{tag}:3", "y"), lambda r: r.set("{tag}:3", "x" * (3 * 997 % 300000))),
            ]:
                change(r2)
                changed = r2.execute_command("TALLY", "DIGEST")
                self.assertNotEqual(changed, d1)
                tree_changed = r2.execute_command("TALLY", "DIGEST", "TREE")
                differing = [i for i in range(16) if tree_changed[i] != tree1[i]]
                self.assertEqual(len(differing), 1, differing)
                undo(r2)
                self.assertEqual(r2.execute_command("TALLY", "DIGEST"), d1)

            # A field/value swap between two fields is a different hash, not the same sum.
            r1.hset("swap", mapping={"a": "1", "b": "2"})
            r2.hset("swap", mapping={"a": "2", "b": "1"})
            self.assertNotEqual(r1.execute_command("TALLY", "DIGEST"), r2.execute_command("TALLY", "DIGEST"))

            info = offload_info(r2)
            self.assertEqual(info["offload_backends"], "cpu")
            for op in ("checksum", "partition", "merkle"):
                self.assertGreater(counters(info, op)["batches"], 0, op)

    def test_batch_bounds_do_not_change_the_digest(self):
        # Tiny batches cut hash entries and big values across batch boundaries; the digest must not move.
        keys = list(range(300))
        with Tallyd(threads=2) as big, Tallyd("--offload-batch-items", "7", "--offload-batch-bytes", "64kb",
                                              threads=1) as small:
            rb = redis.Redis(port=big.port, decode_responses=True)
            rs = redis.Redis(port=small.port, decode_responses=True)
            load(rb, random.Random(1), keys)
            load(rs, random.Random(2), list(reversed(keys)))
            rb.hset("wide", mapping={"f%d" % i: "y" * (i * 131 % 70000) for i in range(40)})
            rs.hset("wide", mapping={"f%d" % i: "y" * (i * 131 % 70000) for i in range(39, -1, -1)})
            self.assertEqual(rb.execute_command("TALLY", "DIGEST"), rs.execute_command("TALLY", "DIGEST"))
            info = offload_info(rs)
            sums = counters(info, "checksum")
            self.assertGreaterEqual(sums["items"] / sums["batches"], 1)
            self.assertLessEqual(sums["items"] / sums["batches"], 7)

    def test_expired_keys_are_not_in_the_digest(self):
        with Tallyd(threads=2) as a, Tallyd(threads=2) as b:
            ra = redis.Redis(port=a.port, decode_responses=True)
            rb = redis.Redis(port=b.port, decode_responses=True)
            ra.set("k", "v")
            rb.set("k", "v")
            rb.set("gone", "soon", px=50)
            time.sleep(0.2)
            self.assertEqual(ra.execute_command("TALLY", "DIGEST"), rb.execute_command("TALLY", "DIGEST"))

    def test_errors(self):
        with Tallyd(threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            for args in (["TALLY", "NOPE"], ["TALLY", "DIGEST", "LEAVES"], ["TALLY", "DIGEST", "TREE", "x"]):
                with self.assertRaises(redis.ResponseError) as ctx:
                    r.execute_command(*args)
                self.assertIn("Try TALLY HELP", str(ctx.exception))
            self.assertIn("DIGEST", " ".join(r.execute_command("TALLY", "HELP")))


class PartitionTest(unittest.TestCase):
    def test_multi_key_commands_go_through_the_engine_and_route_right(self):
        with Tallyd("--offload-partition-keys-min", "8", threads=2, admin=True) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            before = counters(offload_info(r), "partition")
            mapping = {"key:%d" % i: "v%d" % i for i in range(100)}
            self.assertTrue(r.mset(mapping))
            self.assertEqual(r.mget(list(mapping)), list(mapping.values()))
            self.assertEqual(r.exists(*mapping), 100)
            after = counters(offload_info(r), "partition")
            self.assertEqual(after["batches"] - before["batches"], 3)
            self.assertEqual(after["items"] - before["items"], 300)
            # Below the threshold the keys are hashed inline: no batch.
            self.assertEqual(r.mget(["key:1", "key:2"]), ["v1", "v2"])
            self.assertEqual(counters(offload_info(r), "partition")["batches"], after["batches"])
            # Each key is on the shard its slot names: every single-key read finds it.
            for k, v in mapping.items():
                self.assertEqual(r.get(k), v)
            metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.admin_port, timeout=5).read().decode()
            self.assertIn('tally_offload_batches_total{op="partition",backend="cpu"} 3', metrics)
            self.assertIn('tally_offload_items_total{op="partition",backend="cpu"} 300', metrics)

    def test_memcached_multi_get_goes_through_the_engine(self):
        with Tallyd("--offload-partition-keys-min", "4", threads=2) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            for i in range(10):
                r.set("mc%d" % i, "v%d" % i)
            with socket.create_connection(("127.0.0.1", srv.mc_port), timeout=5) as s:
                s.sendall(("get " + " ".join("mc%d" % i for i in range(10)) + "\r\n").encode())
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = s.recv(65536)
                    self.assertTrue(chunk)
                    data += chunk
            self.assertEqual(data.count(b"VALUE "), 10)
            self.assertEqual(counters(offload_info(r), "partition")["items"], 10)


class BackendConfigTest(unittest.TestCase):
    def test_absent_backend_is_noted_and_unknown_one_refused(self):
        with Tallyd("--offload-backends", "cpu,cuda", threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            info = offload_info(r)
            # This machine has no GPU (or the build no CUDA): the server runs on the cpu and says why.
            if info["offload_backends"] == "cpu":
                self.assertIn("cuda", info["offload_absent"])
                self.assertIn("cuda", srv.output())
            r.set("a", "1")
            self.assertRegex(r.execute_command("TALLY", "DIGEST"), "^[0-9a-f]{16}$")
        bad = subprocess.run([TALLYD, "--port", "0", "--offload-backends", "cpu,tpu"], capture_output=True,
                             text=True, timeout=20)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("unknown offload backend 'tpu'", bad.stdout + bad.stderr)
        for flag, value in (("--offload-batch-bytes", "1kb"), ("--offload-batch-items", "0")):
            bad = subprocess.run([TALLYD, "--port", "0", flag, value], capture_output=True, text=True, timeout=20)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn(flag[2:].replace("-", "_"), bad.stdout + bad.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
            f.write("[checksum.cpu]\nlaunch_ns = 'fast'\n")
            f.flush()
            bad = subprocess.run([TALLYD, "--port", "0", "--offload-calibration", f.name], capture_output=True,
                                 text=True, timeout=20)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("offload", bad.stdout + bad.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
