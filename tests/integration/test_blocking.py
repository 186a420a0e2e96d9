"""Blocking list and sorted-set commands (BLPOP and the rest) against real tallyd processes, in memory
and durable modes: woken by writes from other clients on any shard, timeouts, pipelines held behind a
blocking command, many waiters on one key (each element to exactly one), clients that leave while
waiting, and the errors Redis gives."""
import socket
import threading
import time
import unittest

import redis

from harness import Raw, ServerCase, resp


def later(delay, fn, *args):
    t = threading.Timer(delay, fn, args)
    t.start()
    return t


class BlockingTest(ServerCase):
    extra = ("--durability", "none")

    def setUp(self):
        self.r = self.client()
        self.r.flushall()

    def test_blpop_is_woken_by_a_push_from_another_client(self):
        # Keys on both shards (threads=2): the waiter's shard is not always the key's.
        for key in ("{a}q", "{b}q", "{c}q", "{d}q"):
            pusher = self.client()
            t = later(0.2, pusher.rpush, key, "hello")
            t0 = time.monotonic()
            self.assertEqual(self.r.blpop([key], timeout=10), (key, "hello"))
            self.assertLess(time.monotonic() - t0, 5)
            t.join()
            self.assertEqual(self.r.exists(key), 0)

    def test_an_element_already_there_is_served_at_once(self):
        self.r.rpush("{k}b", "x", "y")
        self.assertEqual(self.r.blpop(["{k}a", "{k}b"], timeout=0), ("{k}b", "x"))
        self.assertEqual(self.r.brpop(["{k}a", "{k}b"], timeout=0), ("{k}b", "y"))

    def test_timeouts_answer_nil_after_about_the_timeout(self):
        t0 = time.monotonic()
        self.assertIsNone(self.r.blpop(["nothing"], timeout=0.3))
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 3)
        self.assertIsNone(self.r.brpoplpush("{n}nothing", "{n}dst", timeout=0.1))
        self.assertIsNone(self.r.bzpopmin(["nothing"], timeout=0.1))
        self.assertIsNone(self.r.execute_command("BLMPOP", "0.1", "1", "nothing", "LEFT"))

    def test_moves_and_sorted_sets(self):
        pusher = self.client()
        t = later(0.2, pusher.rpush, "{m}src", "v1")
        self.assertEqual(self.r.blmove("{m}src", "{m}dst", 10, "LEFT", "RIGHT"), "v1")
        t.join()
        self.assertEqual(self.r.lrange("{m}dst", 0, -1), ["v1"])
        t = later(0.2, pusher.zadd, "{z}s", {"low": 1, "high": 9})
        self.assertEqual(self.r.bzpopmax(["{z}s"], timeout=10), ("{z}s", "high", 9.0))
        t.join()
        self.assertEqual(self.r.bzpopmin(["{z}s"], timeout=10), ("{z}s", "low", 1.0))
        t = later(0.2, pusher.rpush, "{l}2", "a", "b", "c")
        self.assertEqual(self.r.execute_command("BLMPOP", "10", "2", "{l}1", "{l}2", "LEFT", "COUNT", "2"),
                         ["{l}2", ["a", "b"]])
        t.join()
        t = later(0.2, pusher.zadd, "{y}1", {"m": 2.5})
        self.assertEqual(self.r.execute_command("BZMPOP", "10", "1", "{y}1", "MAX"), ["{y}1", [["m", "2.5"]]])
        t.join()

    def test_commands_pipelined_after_a_blocking_one_wait_for_it(self):
        raw = Raw(self.server.port)
        raw.send(resp("BLPOP", "{p}a", "10") + resp("RPUSH", "{p}log", "after") + resp("PING"))
        time.sleep(0.3)
        self.assertEqual(self.r.lrange("{p}log", 0, -1), [])  # held behind the BLPOP
        self.r.rpush("{p}a", "first")
        self.assertEqual(raw.read_until(b"PONG\r\n"),
                         b"*2\r\n$4\r\n{p}a\r\n$5\r\nfirst\r\n:1\r\n+PONG\r\n")
        raw.close()

    def test_many_waiters_each_get_exactly_one_element(self):
        n = 20
        got = []
        lock = threading.Lock()

        def wait_one():
            v = self.client().blpop(["{w}q"], timeout=15)
            with lock:
                got.append(v[1] if v else None)

        threads = [threading.Thread(target=wait_one) for _ in range(n)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        for i in range(n):
            self.r.rpush("{w}q", "e%d" % i)
        for t in threads:
            t.join()
        self.assertEqual(sorted(got), sorted("e%d" % i for i in range(n)))
        self.assertEqual(self.r.llen("{w}q"), 0)

    def test_a_client_that_leaves_while_waiting_takes_nothing(self):
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(resp("BLPOP", "{x}q", "0"))
        time.sleep(0.2)
        s.close()
        time.sleep(0.2)
        self.r.rpush("{x}q", "kept")
        time.sleep(0.2)
        self.assertEqual(self.r.lrange("{x}q", 0, -1), ["kept"])
        self.assertTrue(self.server.alive())

    def test_errors(self):
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("BLPOP", "k", "-1")
        self.assertEqual(str(cm.exception), "timeout is negative")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("BLPOP", "k", "soon")
        self.assertEqual(str(cm.exception), "timeout is not a float or out of range")
        self.r.set("str", "v")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.blpop(["str"], timeout=1)
        self.assertTrue(str(cm.exception).startswith("WRONGTYPE"))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("BLMPOP", "1", "0", "k", "LEFT")
        self.assertIn("numkeys", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("BLMOVE", "{e}a", "{e}b", "UP", "LEFT", "1")
        self.assertIn("syntax", str(cm.exception))


class DurableBlockingTest(BlockingTest):
    """The same with every write (the probes too) going through the log."""
    extra = ("--durability", "fsync", "--partitions", "16")  # --dir alone would mean fsync too



if __name__ == "__main__":
    unittest.main()
