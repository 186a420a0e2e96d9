"""Partitions: the slot ranges each shard holds, moving one between shards while clients keep
going, and multi-key commands whose keys lie in several partitions of one shard."""
import shutil
import tempfile
import threading
import unittest

import redis

from harness import Tallyd, Raw, resp


class LayoutTest(unittest.TestCase):
    def test_partitions_cover_every_slot_once_in_contiguous_blocks(self):
        with Tallyd("--partitions", "64", threads=2) as srv:
            r = redis.Redis(port=srv.port)
            rows = r.execute_command("TALLY", "PARTITIONS")
            self.assertEqual(len(rows), 64)
            expected_first = 0
            for pid, first, last, shard, keys in rows:
                self.assertEqual(first, expected_first)
                self.assertEqual(last, first + 16384 // 64 - 1)
                self.assertIn(shard, (0, 1))
                expected_first = last + 1
            self.assertEqual(expected_first, 16384)
            # A shard holds one contiguous block, so SCAN walks several partitions per step.
            shards = [row[3] for row in rows]
            self.assertEqual(shards, sorted(shards))
            self.assertEqual(r.info("server")["partitions"], 64)

    def test_a_bad_partition_count_is_refused(self):
        srv = Tallyd("--partitions", "100", threads=1)
        with self.assertRaises(RuntimeError) as ctx:
            srv.start()
        self.assertIn("power of two", str(ctx.exception))


class MoveTest(unittest.TestCase):
    def test_a_partition_moves_while_a_pipelining_client_keeps_its_order(self):
        with Tallyd("--partitions", "16", threads=2) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            keys = ["k%d" % i for i in range(400)]
            r.mset({k: "0" for k in keys})
            rows = r.execute_command("TALLY", "PARTITIONS")
            part = [row for row in rows if row[4] > 0][0]
            pid, from_shard = part[0], part[3]
            stop = threading.Event()
            errors = []

            def writer(n):
                # Pipelined SET then GET of the same key: every GET must see its own SET.
                c = redis.Redis(port=srv.port, decode_responses=True)
                i = 0
                while not stop.is_set():
                    i += 1
                    pipe = c.pipeline(transaction=False)
                    for k in keys[n::4]:
                        pipe.set(k, "%d-%d" % (n, i))
                        pipe.get(k)
                    out = pipe.execute()
                    for j in range(0, len(out), 2):
                        if out[j] is not True or out[j + 1] != "%d-%d" % (n, i):
                            errors.append(out[j:j + 2])
                            return

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for move in range(6):
                to = 1 - from_shard
                self.assertTrue(r.execute_command("TALLY", "MOVE-PARTITION", pid, to))
                from_shard = to
                # Keyspace-wide commands during and after moves see every partition once.
                self.assertEqual(r.dbsize(), len(keys))
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            rows = {row[0]: row for row in r.execute_command("TALLY", "PARTITIONS")}
            self.assertEqual(rows[pid][3], from_shard)
            self.assertEqual(sum(row[4] for row in rows.values()), len(keys))
            self.assertEqual(len(r.mget(keys)), len(keys))
            self.assertEqual(set(r.keys("*")), set(keys))
            # memcached reaches the moved partition too.
            s = Raw(srv.mc_port)
            s.send(b"get " + " ".join(keys[:50]).encode() + b"\r\n")
            self.assertEqual(s.read_until(b"END\r\n").count(b"VALUE "), 50)

    def test_bad_moves_are_refused(self):
        with Tallyd("--partitions", "8", threads=2) as srv:
            r = redis.Redis(port=srv.port)
            with self.assertRaises(redis.ResponseError):
                r.execute_command("TALLY", "MOVE-PARTITION", 99, 0)
            with self.assertRaises(redis.ResponseError):
                r.execute_command("TALLY", "MOVE-PARTITION", 1, 7)
        data = tempfile.mkdtemp(prefix="tally-move-")
        try:
            with Tallyd("--partitions", "8", "--dir", data, threads=2) as srv:
                r = redis.Redis(port=srv.port)
                with self.assertRaises(redis.ResponseError) as ctx:
                    r.execute_command("TALLY", "MOVE-PARTITION", 1, 0)
                self.assertIn("without durability", str(ctx.exception))
        finally:
            shutil.rmtree(data, ignore_errors=True)


class CrossPartitionTest(unittest.TestCase):
    def test_multi_key_commands_over_partitions_of_one_shard_run_atomically(self):
        with Tallyd("--partitions", "256", threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            # foo and bar lie in different partitions (slots 12182 and 5061).
            r.set("foo", "1", ex=100)
            self.assertTrue(r.rename("foo", "bar"))
            self.assertEqual(r.get("bar"), "1")
            self.assertGreater(r.ttl("bar"), 90)
            self.assertEqual(r.exists("foo"), 0)
            r.sadd("s1", "a", "b", "c")
            r.sadd("s2", "c", "d")
            self.assertEqual(r.sunionstore("s3", ["s1", "s2"]), 4)
            self.assertTrue(r.smove("s1", "s2", "a"))
            self.assertEqual(r.smembers("s2"), {"a", "c", "d"})
            self.assertEqual(r.sinter("s2", "s3"), {"a", "c", "d"})
            self.assertTrue(r.msetnx({"x": "1", "y": "2"}))
            self.assertFalse(r.msetnx({"y": "3", "z": "4"}))
            self.assertEqual(r.mget("x", "y", "z"), ["1", "2", None])
            # An item set over memcached keeps its flags through a rename.
            s = Raw(srv.mc_port)
            s.send(b"set m 42 0 2\r\nhi\r\n")
            self.assertEqual(s.read_until(b"\r\n"), b"STORED\r\n")
            self.assertTrue(r.rename("m", "n"))
            s.send(b"get n\r\n")
            self.assertEqual(s.read_until(b"END\r\n"), b"VALUE n 42 2\r\nhi\r\nEND\r\n")

    def test_across_shards_or_logged_partitions_they_answer_crossslot(self):
        with Tallyd("--partitions", "256", threads=2) as srv:
            r = redis.Redis(port=srv.port)
            r.sadd("{a}x", "m")
            with self.assertRaises(redis.ResponseError) as ctx:
                # {a} and {b} hash to slots 15495 (partition 242, shard 1) and 3300 (partition 51,
                # shard 0).
                r.execute_command("SMOVE", "{a}x", "{b}y", "m")
            self.assertIn("CROSSSLOT", str(ctx.exception))
        data = tempfile.mkdtemp(prefix="tally-cross-")
        try:
            with Tallyd("--partitions", "256", "--dir", data, threads=1) as srv:
                r = redis.Redis(port=srv.port)
                r.set("foo", "1")
                with self.assertRaises(redis.ResponseError) as ctx:
                    r.rename("foo", "bar")
                self.assertIn("CROSSSLOT", str(ctx.exception))
                # Hash tags keep keys together, as with Redis Cluster.
                r.set("{u}.a", "1")
                self.assertTrue(r.rename("{u}.a", "{u}.b"))
        finally:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
