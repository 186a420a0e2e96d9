"""HyperLogLog (PFADD, PFCOUNT, PFMERGE) against redis-server in the same run: the same elements give
the same counts and the same answers, the values move both ways as bytes (tallyd's sparse and dense
layouts read by redis-server, redis-server's read by tallyd), and values that are not
HyperLogLogs, or are damaged, get Redis's errors and never break the server."""
import random
import shutil
import unittest

import redis

from harness import AgainstRedisCase


@unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
class HyperLogLogTest(AgainstRedisCase):
    def both(self, *args):
        out = []
        for c in (self.r, self.t):
            try:
                out.append(c.execute_command(*args))
            except redis.ResponseError as e:
                out.append("error: " + str(e).split(" ")[0])
        return out

    def test_the_same_counts_as_redis_server(self):
        rng = random.Random(5)
        for c in (self.r, self.t):
            c.flushall()
        sizes = [0, 1, 2, 10, 100, 1000, 5000, 30000, 100000]
        for n, size in enumerate(sizes):
            key = "{h}%d" % n
            elements = ["e%d-%d" % (n, rng.randrange(10**9)) for _ in range(size)]
            elements += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20))) for _ in range(size // 10)]
            for i in range(0, len(elements), 500):
                r_ans, t_ans = self.both("PFADD", key, *elements[i:i + 500])
                self.assertEqual(t_ans, r_ans, (key, i))
            if not elements:
                self.assertEqual(self.both("PFADD", key), [1, 1])
            self.assertEqual(self.both("PFADD", key, *elements[:50]), [0, 0] if elements else [0, 0])
            r_count, t_count = self.both("PFCOUNT", key)
            self.assertEqual(t_count, r_count, (key, size))
        keys = ["{h}%d" % n for n in range(len(sizes))]
        self.assertEqual(*self.both("PFCOUNT", *keys))
        self.assertEqual(*self.both("PFCOUNT", "{h}missing"))
        self.assertEqual(*self.both("PFMERGE", "{h}all", *keys))
        self.assertEqual(*self.both("PFCOUNT", "{h}all"))
        self.assertEqual(*self.both("PFMERGE", "{h}5", "{h}6"))  # the destination counts as a source
        self.assertEqual(*self.both("PFCOUNT", "{h}5"))
        # The estimate is within HyperLogLog's error of the truth (0.81% standard error).
        self.assertLess(abs(self.t.pfcount("{h}8") - 110000) / 110000, 0.03)

    def test_values_move_both_ways(self):
        rng = random.Random(9)
        for size in (3, 40, 3000, 20000):
            elements = ["m%d" % rng.randrange(10**9) for _ in range(size)]
            for c in (self.r, self.t):
                c.delete("{v}a", "{v}b")
            self.r.pfadd("{v}a", *elements)  # redis-server's layout: sparse while small, dense later
            self.t.pfadd("{v}b", *elements)  # tallyd's: dense
            from_redis, from_tally = self.r.get("{v}a"), self.t.get("{v}b")
            self.assertTrue(from_redis.startswith(b"HYLL") and from_tally.startswith(b"HYLL"))
            # Sparse while small (as redis-server keeps it), dense (12304 bytes) beyond.
            if size <= 40:
                self.assertEqual(from_tally[4], 1)
                self.assertLess(len(from_tally), 400)
            if size >= 3000:
                self.assertEqual((from_tally[4], len(from_tally)), (0, 12304))
            self.t.set("{v}r", from_redis)
            self.r.set("{v}t", from_tally)
            self.assertEqual(self.t.pfcount("{v}r"), self.r.pfcount("{v}a"), size)
            self.assertEqual(self.r.pfcount("{v}t"), self.t.pfcount("{v}b"), size)
            # And through DUMP/RESTORE.
            self.t.restore("{v}d", 0, self.r.dump("{v}a"), replace=True)
            self.assertEqual(self.t.pfcount("{v}d"), self.r.pfcount("{v}a"))
            self.assertEqual(self.t.pfadd("{v}r", *elements[:10]), 0)

    def test_wrong_types_and_damaged_values(self):
        for c in (self.r, self.t):
            c.flushall()
            c.set("{w}s", "not a hyperloglog")
            c.rpush("{w}l", "x")
            c.pfadd("{w}h", "a", "b", "c")
        for args in (("PFADD", "{w}s", "x"), ("PFCOUNT", "{w}s"), ("PFCOUNT", "{w}l"), ("PFMERGE", "{w}s", "{w}h"),
                     ("PFMERGE", "{w}h", "{w}l"), ("PFADD",), ("PFCOUNT",), ("PFADD", "{w}l")):
            r_ans, t_ans = self.both(*args)
            self.assertEqual(t_ans, r_ans, args)
        # Damaged values: a cut dense value, a sparse one whose runs overflow or stop short.
        rng = random.Random(3)
        good = self.t.get("{w}h")
        sparse = self.r.get("{w}h")
        for trial in range(300):
            base = bytearray(good if trial % 2 else sparse)
            kind = trial % 3
            if kind == 0:
                del base[rng.randrange(16, len(base)):]
            elif kind == 1:
                base[rng.randrange(16, len(base))] = rng.randrange(256)
            else:
                base += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            self.t.set("{w}bad", bytes(base))
            try:
                n = self.t.pfcount("{w}bad")
                self.assertGreaterEqual(n, 0)
            except redis.ResponseError as e:
                self.assertRegex(str(e), "^(WRONGTYPE|INVALIDOBJ)")
        self.assertTrue(self.t.ping())


if __name__ == "__main__":
    unittest.main(verbosity=2)
