"""MULTI/EXEC/DISCARD/WATCH/UNWATCH with redis-py and raw RESP, in memory and durable modes: queued
replies, EXECABORT after a refused command, WATCH catching writes by any client (an optimistic counter
under concurrent clients loses no increment), transactions over several partitions of one shard, and
CROSSSLOT where one transaction cannot be atomic."""
import threading
import unittest

import redis

from harness import Raw, ServerCase, resp


class TransactionTest(ServerCase):
    extra = ("--durability", "none")

    def setUp(self):
        self.r = self.client()
        self.r.flushall()

    def test_pipeline_transaction(self):
        p = self.r.pipeline()  # redis-py's default: MULTI ... EXEC
        p.set("{u}n", 1).incr("{u}n").rpush("{u}l", "a", "b").zadd("{u}z", {"m": 2}).get("{u}n")
        self.assertEqual(p.execute(), [True, 2, 2, 1, "2"])
        raw = Raw(self.server.port)
        raw.send(resp("MULTI") + resp("INCR", "{u}n") + resp("LRANGE", "{u}l", "0", "-1") + resp("EXEC"))
        self.assertEqual(raw.read_until(b"$1\r\nb\r\n"),
                         b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n")
        raw.close()

    def test_errors_and_aborts(self):
        raw = Raw(self.server.port)
        raw.send(resp("EXEC") + resp("DISCARD") + resp("MULTI") + resp("MULTI") + resp("SET", "{e}k", "1") +
                 resp("NOSUCH") + resp("GET") + resp("EXEC") + resp("GET", "{e}k"))
        want = (b"-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n"
                b"-ERR MULTI calls can not be nested\r\n+QUEUED\r\n"
                b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
                b"-ERR wrong number of arguments for 'get' command\r\n"
                b"-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n")
        self.assertEqual(raw.read_until(b"$-1\r\n"), want)
        raw.send(resp("MULTI") + resp("SET", "{e}k", "1") + resp("DISCARD") + resp("GET", "{e}k"))
        self.assertEqual(raw.read_until(b"$-1\r\n"), b"+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n")
        # A command error at EXEC time is that command's reply only; the others run (as Redis).
        raw.send(resp("MULTI") + resp("SET", "{e}s", "x") + resp("INCR", "{e}s") + resp("SET", "{e}t", "y") + resp("EXEC"))
        self.assertEqual(raw.read_until(b"-ERR value is not an integer or out of range\r\n+OK\r\n"),
                         b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n"
                         b"-ERR value is not an integer or out of range\r\n+OK\r\n")
        raw.send(resp("MULTI") + resp("PING") + resp("EXEC") + resp("WATCH", "{e}k"))
        got = raw.read_until(b"EXECABORT Transaction discarded because of previous errors.\r\n")
        self.assertIn(b"not supported inside MULTI", got)
        self.assertEqual(raw.read_until(b"\r\n"), b"+OK\r\n")
        raw.send(resp("MULTI") + resp("WATCH", "{e}k") + resp("DISCARD"))
        self.assertEqual(raw.read_until(b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n"),
                         b"+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n")
        raw.close()

    def test_watch_sees_writes_of_other_clients(self):
        other = redis.Redis(port=self.server.port)
        with self.r.pipeline() as p:
            p.watch("{w}k")
            other.set("{w}k", "changed")
            p.multi()
            p.set("{w}k", "mine")
            with self.assertRaises(redis.WatchError):
                p.execute()
        self.assertEqual(self.r.get("{w}k"), "changed")
        with self.r.pipeline() as p:  # unchanged since WATCH: it goes through
            p.watch("{w}k", "{w}absent")
            p.multi()
            p.set("{w}k", "mine")
            self.assertEqual(p.execute(), [True])
        with self.r.pipeline() as p:  # a watched key that appears counts as a write
            p.watch("{w}absent")
            other.set("{w}absent", "1")
            p.multi()
            p.get("{w}k")
            with self.assertRaises(redis.WatchError):
                p.execute()
        # A TTL set, changed or removed is a write, as in Redis (memcached's touch keeps the CAS).
        for change in (lambda: other.expire("{w}k", 100), lambda: other.pexpire("{w}k", 50000),
                       lambda: other.persist("{w}k"), lambda: other.getex("{w}k", ex=30)):
            with self.r.pipeline() as p:
                p.watch("{w}k")
                change()
                p.multi()
                p.get("{w}k")
                with self.assertRaises(redis.WatchError):
                    p.execute()
        with self.r.pipeline() as p:  # UNWATCH forgets
            p.watch("{w}k")
            other.set("{w}k", "again")
            p.unwatch()
            p.multi()
            p.get("{w}k")
            self.assertEqual(p.execute(), ["again"])

    def test_optimistic_counter_loses_no_increment(self):
        clients, rounds = 6, 60
        retries = [0]
        lock = threading.Lock()

        def work():
            r = redis.Redis(port=self.server.port)
            for _ in range(rounds):
                with r.pipeline() as p:
                    while True:
                        try:
                            p.watch("{c}n")
                            v = int(p.get("{c}n") or 0)
                            p.multi()
                            p.set("{c}n", v + 1)
                            p.execute()
                            break
                        except redis.WatchError:
                            with lock:
                                retries[0] += 1

        threads = [threading.Thread(target=work) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(int(self.r.get("{c}n")), clients * rounds)
        print("optimistic counter: %d increments, %d retries" % (clients * rounds, retries[0]))

    def test_partitions_of_one_shard_or_crossslot(self):
        # Keys without a shared hash tag lie in different partitions: over several shards, or logged,
        # one transaction cannot be atomic and EXEC says so.
        p = self.r.pipeline()
        for i in range(20):
            p.set("spread%d" % i, i)
        with self.assertRaises(redis.ResponseError) as cm:
            p.execute()
        self.assertIn("CROSSSLOT", str(cm.exception))
        self.assertEqual(self.r.exists(*["spread%d" % i for i in range(20)]), 0)


class OneShardTransactionTest(TransactionTest):
    threads = 1

    def test_partitions_of_one_shard_or_crossslot(self):
        # One shard in memory mode: keys of any partitions run together on their gathered copies.
        p = self.r.pipeline()
        for i in range(20):
            p.set("spread%d" % i, i)
        p.mget(["spread%d" % i for i in range(20)])
        out = p.execute()
        self.assertEqual(out[-1], [str(i) for i in range(20)])
        self.assertEqual(self.r.get("spread7"), "7")


class DurableTransactionTest(TransactionTest):
    extra = ("--durability", "fsync", "--partitions", "16")

    def test_a_transaction_survives_a_kill_whole(self):
        p = self.r.pipeline()
        p.set("{d}a", 1).rpush("{d}l", "x", "y").incrby("{d}a", 41)
        self.assertEqual(p.execute(), [True, 2, 42])
        self.server.proc.kill()
        self.server.proc.wait()
        self.server.proc = None
        self.server.start()
        r = redis.Redis(port=self.server.port, decode_responses=True)
        self.assertEqual(r.get("{d}a"), "42")
        self.assertEqual(r.lrange("{d}l", 0, -1), ["x", "y"])


if __name__ == "__main__":
    unittest.main()
