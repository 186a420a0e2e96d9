"""The change stream (docs/change-stream.md) against real tallyd processes: every committed write of a
partition appears once, in commit order, with its effect; readers tail it with XREAD BLOCK and share
it through consumer groups; it is read-only to clients; retention tells a reader that fell behind
instead of skipping; in durable mode ids are log positions, with no gap or repeat across a restart
and a kill; and the CQRS example consumer keeps a correct read model across its own restarts."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import redis
from redis.crc import key_slot

from harness import ServerCase, Tallyd

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cqrs_read_model.py")


def id_tuple(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


class ChangeStreamTest(ServerCase):
    extra = ("--change-stream", "yes", "--change-stream-max-entries", "1000", "--durability", "none")

    def setUp(self):
        self.r = self.client()
        self.r.flushall()
        self.rows = self.r.execute_command("TALLY", "CHANGES")

    def stream_of(self, key):
        slot = key_slot(key.encode())
        for _, stream, first, last in self.rows:
            if first <= slot <= last:
                return stream
        self.fail("no partition for " + key)

    def changes(self, stream, after="-"):
        return self.r.xrange(stream, min=after)

    def test_every_partition_has_a_key_that_routes_to_it(self):
        self.assertEqual(len(self.rows), 256)
        for partition, stream, first, last in self.rows:
            self.assertTrue(stream.startswith("__tally:changes:{"))
            self.assertTrue(first <= key_slot(stream.encode()) <= last)

    def test_writes_appear_once_in_order_with_their_effect(self):
        s = self.stream_of("{u1}")
        self.r.set("{u1}name", "ada")
        self.r.incrby("{u1}visits", 5)
        self.r.expire("{u1}name", 100)
        self.r.hset("{u1}profile", mapping={"lang": "en", "tz": "utc"})
        self.r.rpush("{u1}log", "a", "b")
        self.r.delete("{u1}missing")  # deletes nothing: not a change
        self.r.get("{u1}name")        # a read: not a change
        self.r.delete("{u1}name")
        with self.r.pipeline() as p:  # MULTI/EXEC: each write of it is a change
            p.set("{u1}a", 1).incr("{u1}a")
            p.execute()
        got = [fields for _, fields in self.changes(s)]
        self.assertEqual([c["op"] for c in got], ["set", "incrby", "expire", "hset", "rpush", "del", "set", "incrby"])
        self.assertEqual(got[0]["key"], "{u1}name")
        self.assertEqual(got[0]["value"], "ada")
        self.assertEqual(got[0]["ttl_ms"], "-1")
        self.assertEqual(got[1]["value"], "5")  # the new value, not only the delta
        self.assertEqual((got[1]["arg1"], got[1]["arg2"]), ("{u1}visits", "5"))
        self.assertTrue(0 < int(got[2]["ttl_ms"]) <= 100000)
        self.assertEqual(got[3]["type"], "hash")
        self.assertEqual(got[5]["type"], "none")
        self.assertEqual(got[7]["value"], "2")
        for c in got:
            self.assertEqual(int(c["partition"]), [p for p, k, _, _ in self.rows if k == s][0])
        ids = [eid for eid, _ in self.changes(s)]
        self.assertEqual(ids, sorted(ids, key=id_tuple))

    def test_readers_tail_it_with_xread_block(self):
        s = self.stream_of("{t}")
        writer = self.client()
        t = threading.Timer(0.2, writer.set, ("{t}k", "v"))
        t.start()
        got = self.r.xread({s: "$"}, block=10000)
        t.join()
        self.assertEqual(got[0][1][0][1]["key"], "{t}k")

    def test_consumer_groups_share_it_each_change_once(self):
        s = self.stream_of("{g}")
        self.r.xgroup_create(s, "g", id="$", mkstream=True)
        for i in range(200):
            self.r.set("{g}k%d" % i, i)
        seen = []
        for name in ("a", "b", "c"):
            for _, entries in self.r.xreadgroup("g", name, {s: ">"}, count=70):
                seen += [f["key"] for _, f in entries]
                self.r.xack(s, "g", *[eid for eid, _ in entries])
        self.assertEqual(sorted(seen), sorted("{g}k%d" % i for i in range(200)))
        # Reading and acknowledging were not changes themselves.
        self.assertEqual(self.r.xlen(s), 200)

    def test_clients_cannot_write_it(self):
        s = self.stream_of("{w}")
        self.r.set("{w}k", 1)
        for cmd in (("XADD", s, "*", "f", "v"), ("DEL", s), ("XTRIM", s, "MAXLEN", "0"), ("SET", s, "x"),
                    ("EXPIRE", s, "1"), ("RENAME", s, "{w}other")):
            with self.assertRaises(redis.ResponseError) as cm:
                self.r.execute_command(*cmd)
            self.assertIn("written by the server", str(cm.exception))
        with self.assertRaises(redis.ResponseError):
            with self.r.pipeline() as p:
                p.set("{w}k", 2).delete(s)
                p.execute()
        self.assertEqual(self.r.get("{w}k"), "1")  # the transaction was refused whole
        self.assertEqual(self.r.xlen(s), 1)

    def test_a_reader_that_fell_behind_retention_is_told(self):
        s = self.stream_of("{r}")
        self.r.set("{r}first", 1)
        first = self.changes(s)[0][0]
        self.r.xgroup_create(s, "slow", id="$")
        for i in range(1100):  # retention keeps 1000
            self.r.set("{r}k%d" % i, i)
        self.assertEqual(self.r.xlen(s), 1000)
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xread({s: first}, count=1)
        self.assertIn("OUTOFRANGE", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xreadgroup("slow", "c", {s: ">"}, count=1)
        self.assertIn("OUTOFRANGE", str(cm.exception))
        # 0 means "whatever is kept"; a group set to a kept id reads on.
        self.assertEqual(len(self.r.xread({s: "0"}, count=5)[0][1]), 5)
        self.r.xgroup_setid(s, "slow", id=self.changes(s)[0][0])
        self.assertEqual(len(self.r.xreadgroup("slow", "c", {s: ">"}, count=5)[0][1]), 5)
        # FLUSHALL: a change, and what came before it is gone for readers that knew it.
        last = self.changes(s)[-1][0]
        self.r.flushall()
        self.r.set("{r}after", 1)
        ops = [f["op"] for _, f in self.changes(s)]
        self.assertEqual(ops[-1], "set")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xread({s: last}, count=1)
        self.assertIn("OUTOFRANGE", str(cm.exception))

    def test_the_cqrs_example_keeps_its_read_model_across_restarts(self):
        model = os.path.join(self.dir, "model-%s.json" % type(self).__name__)
        if os.path.exists(model):
            os.unlink(model)
        want = {}
        orders = {}
        for i in range(120):
            key = "{orders}:%d" % i
            customer = "cust%d" % (i % 7)
            self.r.hset(key, mapping={"customer": customer, "amount": i * 10})
            orders[key] = (customer, i * 10)
        for i in range(0, 120, 5):
            self.r.delete("{orders}:%d" % i)
            orders.pop("{orders}:%d" % i)
        self.r.hset("{orders}:1", "amount", 999)
        orders["{orders}:1"] = (orders["{orders}:1"][0], 999)
        for customer, amount in orders.values():
            want[customer] = want.get(customer, 0) + amount

        def run(*extra):
            out = subprocess.run([sys.executable, EXAMPLE, "--port", str(self.server.port), "--model", model,
                                  "--until-idle", "0.5", *extra], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            return json.loads(out.stdout)

        run("--max-changes", "50")  # stops part way, as a crash would
        self.assertEqual(run(), want)
        self.r.hset("{orders}:2", "amount", 1)
        want[orders["{orders}:2"][0]] += 1 - orders["{orders}:2"][1]
        self.assertEqual(run("--consumer", "c2"), want)


class DurableChangeStreamTest(ChangeStreamTest):
    """The same through the log: ids are log positions, and restarts neither lose nor repeat changes."""
    extra = ("--change-stream", "yes", "--change-stream-max-entries", "1000", "--durability", "fsync",
             "--partitions", "256")

    def restart(self, kill):
        proc = self.server.proc
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(timeout=20)
        self.server.proc = None
        self.server.start()
        self.r = self.client()

    def test_ids_are_log_positions_without_gaps_or_repeats_across_restarts(self):
        s = self.stream_of("{d}")
        self.r.xgroup_create(s, "g", id="$", mkstream=True)
        written = []
        consumed = []
        for round_ in range(3):
            for i in range(40):
                key = "{d}k%d-%d" % (round_, i)
                self.r.set(key, i)
                written.append(key)
            # Consume half, acknowledge, then restart (gracefully, then by kill -9).
            for _, entries in self.r.xreadgroup("g", "c", {s: ">"}, count=20):
                consumed += [f["key"] for _, f in entries]
                self.r.xack(s, "g", *[eid for eid, _ in entries])
            if round_ < 2:
                self.restart(kill=round_ == 1)
        while True:
            res = self.r.xreadgroup("g", "c", {s: ">"}, count=100)
            if not res:
                break
            consumed += [f["key"] for _, f in res[0][1]]
            self.r.xack(s, "g", *[eid for eid, _ in res[0][1]])
        self.assertEqual(consumed, written)  # each once, in commit order
        entries = self.changes(s)
        self.assertEqual([f["key"] for _, f in entries], written)
        ids = [id_tuple(eid) for eid, _ in entries]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual([int(f["index"]) for _, f in entries], [ms for ms, _ in ids])



class ChangeStreamBytesTest(unittest.TestCase):
    def test_retention_by_bytes(self):
        with Tallyd("--change-stream", "yes", "--change-stream-max-bytes", "256kb", "--threads", "1") as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            rows = r.execute_command("TALLY", "CHANGES")
            slot = key_slot(b"{b}")
            s = next(row[1] for row in rows if row[2] <= slot <= row[3])
            r.set("{b}first", 1)
            first = r.xrange(s)[0][0]
            for i in range(300):
                r.set("{b}k%d" % i, "v" * 4000)  # each change carries the 4 kB value
            kept = r.xlen(s)
            self.assertGreater(kept, 10)
            self.assertLess(kept, 70)  # 256 kB / 4 kB, with the stream's own bookkeeping
            self.assertEqual(r.xrange(s)[-1][1]["key"], "{b}k299")  # the newest is kept
            with self.assertRaises(redis.ResponseError) as cm:
                r.xread({s: first}, count=1)
            self.assertIn("OUTOFRANGE", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
