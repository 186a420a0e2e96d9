"""Streams against real tallyd processes with redis-py, in memory and durable modes: automatic ids,
XREAD BLOCK woken by writes from other clients on any shard (and "$" meaning "after now"), consumer
groups sharing entries (each to exactly one consumer), redelivery of what a consumer never
acknowledged (XPENDING, XCLAIM, XAUTOCLAIM), a blocked group reader that neither spins nor breaks
WATCH, MULTI, and streams with their groups surviving a restart and a kill."""
import signal
import threading
import time
import unittest

import redis

from harness import ServerCase


def later(delay, fn, *args):
    t = threading.Timer(delay, fn, args)
    t.start()
    return t


def id_tuple(i):
    ms, seq = i.split("-")
    return int(ms), int(seq)


class StreamTest(ServerCase):
    extra = ("--durability", "none")

    def setUp(self):
        self.r = self.client()
        self.r.flushall()

    def test_automatic_ids_rise_and_ranges_read_them_back(self):
        p = self.r.pipeline(transaction=False)
        for i in range(500):
            p.xadd("ev", {"n": i, "kind": "click" if i % 2 else "view"})
        ids = p.execute()
        self.assertEqual(len(set(ids)), 500)
        self.assertEqual([id_tuple(i) for i in ids], sorted(id_tuple(i) for i in ids))
        self.assertEqual(self.r.xlen("ev"), 500)
        first = self.r.xrange("ev", count=3)
        self.assertEqual([e[0] for e in first], ids[:3])
        self.assertEqual(first[1][1], {"n": "1", "kind": "click"})
        last = self.r.xrevrange("ev", count=2)
        self.assertEqual([e[0] for e in last], [ids[-1], ids[-2]])
        # Exclusive ranges walk the stream page by page with no repeats.
        seen, start = [], "-"
        while True:
            page = self.r.xrange("ev", min=start, count=64)
            if not page:
                break
            seen += [e[0] for e in page]
            start = "(" + page[-1][0]
        self.assertEqual(seen, ids)
        self.assertEqual(self.r.xtrim("ev", maxlen=100), 400)
        self.assertEqual(self.r.xrange("ev", count=1)[0][0], ids[400])
        self.assertEqual(self.r.xdel("ev", ids[400], ids[401], "1-1"), 2)
        self.assertEqual(self.r.type("ev"), "stream")
        info = self.r.xinfo_stream("ev")
        self.assertEqual(info["length"], 98)
        self.assertEqual(info["entries-added"], 500)
        self.assertEqual(info["max-deleted-entry-id"], ids[401])
        self.assertEqual(info["last-generated-id"], ids[-1])

    def test_xread_block_is_woken_by_an_add_from_another_client(self):
        for key in ("{a}s", "{b}s", "{c}s", "{d}s"):  # keys on both shards (threads=2)
            self.r.xadd(key, {"old": 1})
            writer = self.client()
            t = later(0.2, writer.xadd, key, {"new": 1})
            t0 = time.monotonic()
            got = self.r.xread({key: "$"}, block=10000)
            self.assertLess(time.monotonic() - t0, 5)
            t.join()
            # "$" is "after what was there when the wait began": only the new entry.
            self.assertEqual(len(got), 1)
            self.assertEqual(got[0][0], key)
            self.assertEqual([e[1] for e in got[0][1]], [{"new": "1"}])

    def test_xread_block_answers_at_once_when_entries_are_there_and_nil_on_timeout(self):
        eid = self.r.xadd("s", {"a": 1})
        self.assertEqual(self.r.xread({"s": "0"}, block=5000), [["s", [(eid, {"a": "1"})]]])
        t0 = time.monotonic()
        self.assertEqual(self.r.xread({"s": "$"}, block=300), [])
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 3)
        t0 = time.monotonic()
        self.assertEqual(self.r.xread({"missing": "$"}, block=200), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)

    def test_a_consumer_group_hands_each_entry_to_exactly_one_consumer(self):
        self.r.xgroup_create("jobs", "workers", id="$", mkstream=True)
        got = {}
        lock = threading.Lock()
        stop = threading.Event()

        def worker(name):
            c = self.client()
            while not stop.is_set():
                res = c.xreadgroup("workers", name, {"jobs": ">"}, count=10, block=200)
                for _, entries in res:
                    for eid, fields in entries:
                        with lock:
                            got.setdefault(eid, []).append(name)
                        c.xack("jobs", "workers", eid)

        threads = [threading.Thread(target=worker, args=("w%d" % i,)) for i in range(4)]
        for t in threads:
            t.start()
        producer = self.client()
        ids = []
        for i in range(300):
            ids.append(producer.xadd("jobs", {"job": i}))
            if i % 50 == 0:
                time.sleep(0.05)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if len(got) == len(ids):
                    break
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(sorted(got), sorted(ids))
        self.assertEqual([eid for eid, who in got.items() if len(who) != 1], [])
        self.assertEqual(self.r.xpending("jobs", "workers")["pending"], 0)
        groups = self.r.xinfo_groups("jobs")
        self.assertEqual(groups[0]["lag"], 0)
        self.assertEqual(groups[0]["entries-read"], 300)
        self.assertGreaterEqual(len({w for who in got.values() for w in who}), 2)

    def test_what_a_consumer_never_acknowledged_is_redelivered(self):
        self.r.xgroup_create("q", "g", id="0", mkstream=True)
        ids = [self.r.xadd("q", {"n": i}) for i in range(5)]
        first = self.r.xreadgroup("g", "crashed", {"q": ">"}, count=3)
        self.assertEqual([e[0] for e in first[0][1]], ids[:3])
        summary = self.r.xpending("q", "g")
        self.assertEqual(summary["pending"], 3)
        self.assertEqual(summary["consumers"], [{"name": "crashed", "pending": 3}])
        # Its own history, read again, counts a second delivery.
        again = self.r.xreadgroup("g", "crashed", {"q": "0"})
        self.assertEqual([e[0] for e in again[0][1]], ids[:3])
        time.sleep(0.15)
        claimed = self.r.xautoclaim("q", "g", "rescuer", min_idle_time=100, start_id="0-0", count=2)
        self.assertEqual([e[0] for e in claimed[1]], ids[:2])
        self.assertEqual(claimed[0], ids[2])  # the cursor: where the next call starts
        detail = self.r.xpending_range("q", "g", min="-", max="+", count=10)
        self.assertEqual([(d["message_id"], d["consumer"], d["times_delivered"]) for d in detail],
                         [(ids[0], "rescuer", 3), (ids[1], "rescuer", 3), (ids[2], "crashed", 2)])
        # Deleted before it was claimed: gone from the pending list, reported as deleted.
        self.r.xdel("q", ids[2])
        time.sleep(0.15)
        claimed = self.r.xautoclaim("q", "g", "rescuer", min_idle_time=100, start_id=ids[2])
        self.assertEqual(claimed[0], "0-0")
        self.assertEqual(self.r.xpending("q", "g")["pending"], 2)
        # XCLAIM takes an entry over at once with min-idle 0; JUSTID does not count a delivery.
        self.assertEqual(self.r.xclaim("q", "g", "third", 0, [ids[0]], justid=True), [ids[0]])
        self.assertEqual(self.r.xack("q", "g", *ids), 2)
        self.assertEqual(self.r.xpending("q", "g")["pending"], 0)
        consumers = {c["name"]: c for c in self.r.xinfo_consumers("q", "g")}
        self.assertEqual(set(consumers), {"crashed", "rescuer", "third"})

    def test_a_blocked_group_reader_times_out_and_leaves_watch_alone(self):
        self.r.xgroup_create("w", "g", id="$", mkstream=True)
        reader = self.client()
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            "r", reader.xreadgroup("g", "idle", {"w": ">"}, block=600)))
        t.start()
        time.sleep(0.2)
        # A transaction watching the stream commits: the blocked reader wrote nothing.
        p = self.r.pipeline()
        p.watch("w")
        p.multi()
        p.xlen("w")
        self.assertEqual(p.execute(), [0])
        t.join()
        self.assertEqual(result["r"], [])
        # Waiting cost almost nothing: one probe per wake, not a loop.
        stats = self.r.info("commandstats").get("cmdstat_xreadgroup", {})
        self.assertLessEqual(stats.get("calls", 0), 10)

    def test_xread_block_inside_multi_answers_at_once(self):
        p = self.r.pipeline()
        p.xadd("m", {"a": 1}, id="1-1")
        p.execute_command("XREAD", "BLOCK", "0", "STREAMS", "m", "$")
        p.execute_command("XREAD", "BLOCK", "0", "STREAMS", "m", "0")
        out = p.execute()
        self.assertEqual(out[0], "1-1")
        self.assertIn(out[1], (None, []))  # a null array (redis-py shows it as [])
        self.assertEqual(out[2], [["m", [("1-1", {"a": "1"})]]])

    def test_errors(self):
        self.r.set("str", "x")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xadd("str", {"a": 1})
        self.assertIn("WRONGTYPE", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xadd("s", {"a": 1}, id="0-0")
        self.assertIn("greater than 0-0", str(cm.exception))
        self.r.xadd("s", {"a": 1}, id="5-5")
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xadd("s", {"a": 1}, id="5-5")
        self.assertIn("equal or smaller", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xreadgroup("nogroup", "c", {"s": ">"})
        self.assertIn("NOGROUP", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xread({"s": "not-an-id"})
        self.assertIn("Invalid stream ID", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("XREAD", "BLOCK", "-5", "STREAMS", "s", "$")
        self.assertIn("negative", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.execute_command("XREAD", "BLOCK", "100", "STREAMS", "s")
        self.assertIn("Unbalanced", str(cm.exception))
        with self.assertRaises(redis.ResponseError) as cm:
            self.r.xgroup_create("s", "g", id="0")
            self.r.xgroup_create("s", "g", id="0")
        self.assertIn("BUSYGROUP", str(cm.exception))
        self.assertIn("CREATE", self.r.execute_command("XGROUP", "HELP")[1])
        self.assertEqual(self.r.ping(), True)


class DurableStreamTest(StreamTest):
    """The same with every write going through the log; streams and groups survive restarts."""
    extra = ("--durability", "fsync", "--partitions", "16")

    def restart(self, kill):
        proc = self.server.proc
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=20), -signal.SIGKILL if kill else 0)
        self.server.proc = None
        self.server.start()
        return self.client()

    def test_streams_and_groups_survive_a_restart_and_a_kill(self):
        ids = [self.r.xadd("{p}s", {"n": i}) for i in range(50)]
        self.r.xgroup_create("{p}s", "g", id="0")
        self.r.xreadgroup("g", "c1", {"{p}s": ">"}, count=10)
        self.r.xack("{p}s", "g", ids[0], ids[1])
        self.r.xdel("{p}s", ids[5])
        before = (self.r.xrange("{p}s"), self.r.xpending_range("{p}s", "g", "-", "+", 100),
                  self.r.xinfo_groups("{p}s"), self.r.xinfo_stream("{p}s")["entries-added"])
        for kill in (False, True):
            self.r = self.restart(kill)
            after = (self.r.xrange("{p}s"), self.r.xpending_range("{p}s", "g", "-", "+", 100),
                     self.r.xinfo_groups("{p}s"), self.r.xinfo_stream("{p}s")["entries-added"])
            self.assertEqual(after[0], before[0])
            self.assertEqual([(d["message_id"], d["consumer"], d["times_delivered"]) for d in after[1]],
                             [(d["message_id"], d["consumer"], d["times_delivered"]) for d in before[1]])
            self.assertEqual(after[2], before[2])
            self.assertEqual(after[3], before[3])
        # A new id after the restart is still above every old one.
        self.assertGreater(id_tuple(self.r.xadd("{p}s", {"n": "new"})), id_tuple(ids[-1]))


if __name__ == "__main__":
    unittest.main()
