"""Durability of a single node: the write-ahead log, restart, kill -9, torn tails, corruption, a disk
that fills up. Real tallyd processes with --dir, driven by redis-py and plain memcached sockets.

CRASH_ROUNDS (default 10) sets how many kill -9 rounds the crash test runs (`make crash ROUNDS=200`).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import redis

from harness import Tallyd, Raw

TALLYCTL = os.environ.get("TALLYCTL", "build/host/server/tallyctl")
CRASH_ROUNDS = int(os.environ.get("CRASH_ROUNDS", "10"))
SEED = int(os.environ.get("CRASH_SEED", "1"))


def durable(datadir, *extra, threads=2, mode="fsync"):
    return Tallyd("--dir", datadir, "--durability", mode, "--partitions", "16", *extra, threads=threads)


def dump(r):
    """Every key's type, value and absolute expiry time (ms; -1: none), as plain data."""
    out = {}
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, count=1000)
        for k in keys:
            t = r.type(k)
            if t == b"string":
                v = r.get(k)
            elif t == b"hash":
                v = sorted(r.hgetall(k).items())
            elif t == b"set":
                v = sorted(r.smembers(k))
            elif t == b"list":
                v = r.lrange(k, 0, -1)
            elif t == b"zset":
                v = r.zrange(k, 0, -1, withscores=True)
            else:
                v = None
            out[k] = (t, v, r.execute_command("PEXPIRETIME", k))
        if cursor == 0:
            return out


def key_slot(key):
    """Redis Cluster's slot of a key without a hash tag: CRC16 (XMODEM) mod 16384."""
    crc = 0
    for byte in key:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


def mc(port, payload):
    s = Raw(port)
    s.send(payload)
    return s


class RestartTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tally-durable-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_kind_of_write_survives_a_restart_and_a_kill(self):
        for stop in ("term", "kill"):
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
            srv = durable(self.dir)
            srv.start()
            r = redis.Redis(port=srv.port)
            r.set("s", "v")
            r.set("ttl", "x", ex=1000)
            r.set("gone", "x")
            r.delete("gone")
            r.incrby("n", 41)
            r.incr("n")
            r.append("s", "w")
            r.hset("h", mapping={"f": "1", "g": "2"})
            r.hdel("h", "g")
            r.sadd("set", "a", "b", "c")
            r.srem("set", "b")
            r.rpush("{l}list", "a", "b", "c", "d")
            r.lpop("{l}list")
            r.lmove("{l}list", "{l}list2", "RIGHT", "LEFT")  # one slot: one partition's log
            r.zadd("zs", {"a": 1, "b": 2.5, "c": -3})
            r.zincrby("zs", 10, "a")
            r.zrem("zs", "b")
            r.mset({"m%d" % i: str(i) for i in range(50)})  # spread over every partition
            r.set("p", "1", ex=1000)
            r.persist("p")
            s = mc(srv.mc_port, b"set mk 7 0 3\r\nabc\r\n")
            self.assertEqual(s.read_until(b"\r\n"), b"STORED\r\n")
            s.send(b"incr n 8\r\n")
            self.assertEqual(s.read_until(b"\r\n"), b"50\r\n")
            s.close()
            before = dump(r)
            digest = r.execute_command("TALLY", "DIGEST")
            if stop == "kill":
                srv.proc.kill()
                srv.proc.wait()
                srv.proc = None
            else:
                srv.stop()
            srv = durable(self.dir)
            srv.start()
            r = redis.Redis(port=srv.port)
            self.maxDiff = None
            self.assertEqual(dump(r), before, stop)
            self.assertEqual(r.execute_command("TALLY", "DIGEST"), digest, stop)
            s = mc(srv.mc_port, b"gets mk\r\n")
            got = s.read_until(b"END\r\n")
            self.assertTrue(got.startswith(b"VALUE mk 7 3 "), got)
            s.close()
            # Writes go on after a restart, on top of what was replayed.
            self.assertEqual(r.incr("n"), 51)
            srv.stop()

    def test_interval_mode_keeps_what_a_clean_stop_flushed(self):
        srv = durable(self.dir, "--fsync-interval-ms", "50", mode="interval")
        srv.start()
        r = redis.Redis(port=srv.port)
        for i in range(200):
            r.set("k%d" % i, i)
        info = r.info("persistence")
        self.assertEqual(info["durability"], "interval")
        srv.stop()
        srv = durable(self.dir, mode="interval")
        srv.start()
        r = redis.Redis(port=srv.port)
        self.assertEqual([int(x) for x in r.mget(["k%d" % i for i in range(200)])], list(range(200)))
        srv.stop()

    def test_a_long_pipeline_into_a_durable_node_keeps_its_byte_order(self):
        # 150,000 SETs in one stream: replies wait for the log, the connection pauses reading at
        # pipeline_inflight_max and resumes as log writes complete, so bytes held during a pause
        # and bytes arriving after it must reach the parser in the order they were sent.
        n = 150000
        payload = b"".join(b"*3\r\n$3\r\nSET\r\n$12\r\nkey:%08d\r\n$8\r\n%08d\r\n" % (i, i) for i in range(n))
        for io in ("uring", "epoll"):
            with self.subTest(io=io):
                d = tempfile.mkdtemp(prefix="tally-pipe-", dir=self.dir)
                srv = durable(d, "--io", io, "--fsync-interval-ms", "5", threads=1, mode="interval")
                srv.start()
                s = Raw(srv.port, timeout=60)
                sender = threading.Thread(target=s.send, args=(payload,))
                sender.start()
                got = s.read_exact(5 * n)
                sender.join()
                self.assertEqual(got.count(b"+OK\r\n"), n, got.replace(b"+OK\r\n", b"")[:200])
                srv.stop()
                srv = durable(d, "--io", io, threads=1, mode="interval")
                srv.start()
                r = redis.Redis(port=srv.port)
                self.assertEqual(r.dbsize(), n)
                keys = ["key:%08d" % i for i in range(0, n, 997)]
                self.assertEqual(r.mget(keys), [k[4:].encode() for k in keys])
                srv.stop()

    def test_partition_count_is_fixed_at_first_start(self):
        with durable(self.dir) as srv:
            redis.Redis(port=srv.port).set("a", "1")
        bad = Tallyd("--dir", self.dir, "--partitions", "32", threads=1)
        with self.assertRaises(RuntimeError) as ctx:
            bad.start()
        self.assertIn("created with 16 partitions", str(ctx.exception))

    def test_info_persistence(self):
        with durable(self.dir) as srv:
            r = redis.Redis(port=srv.port)
            for i in range(100):
                r.set("k%d" % i, "v")
            info = r.info("persistence")
            self.assertEqual(info["aof_enabled"], 1)
            self.assertEqual(info["durability"], "fsync")
            self.assertGreaterEqual(info["wal_records"], 100)
            self.assertGreater(info["wal_syncs"], 0)
            self.assertEqual(info["wal_failed"], 0)


class ReplayEqualsStateTest(unittest.TestCase):
    """Random commands, a restart, and the state equal to a model of what the commands did."""

    def test_random_commands_replay_to_the_same_state(self):
        datadir = tempfile.mkdtemp(prefix="tally-replay-")
        try:
            rng = random.Random(SEED)
            model = {}
            srv = durable(datadir)
            srv.start()
            r = redis.Redis(port=srv.port, decode_responses=True)
            keys = ["k%d" % i for i in range(40)]
            for step in range(3000):
                k = rng.choice(keys)
                op = rng.randrange(11)
                kind = model.get(k, (None,))[0]
                if op == 0:
                    v = "v%d" % rng.randrange(1000)
                    r.set(k, v)
                    model[k] = ("string", v)
                elif op == 1:
                    r.delete(k)
                    model.pop(k, None)
                elif op == 2 and kind in (None, "string") and (kind is None or model[k][1].lstrip("-").isdigit()):
                    n = r.incrby(k, rng.randrange(-5, 6))
                    model[k] = ("string", str(n))
                elif op == 3 and kind in (None, "string"):
                    r.append(k, "x")
                    model[k] = ("string", (model[k][1] if kind else "") + "x")
                elif op == 4 and kind in (None, "hash"):
                    f = "f%d" % rng.randrange(5)
                    r.hset(k, f, step)
                    h = dict(model[k][1]) if kind else {}
                    h[f] = str(step)
                    model[k] = ("hash", h)
                elif op == 5 and kind in (None, "set"):
                    m = "m%d" % rng.randrange(8)
                    if rng.randrange(2):
                        r.sadd(k, m)
                        st = set(model[k][1]) if kind else set()
                        st.add(m)
                        model[k] = ("set", st)
                    elif kind:
                        r.srem(k, m)
                        st = set(model[k][1])
                        st.discard(m)
                        if st:
                            model[k] = ("set", st)
                        else:
                            model.pop(k)
                elif op == 6 and kind:
                    # A TTL far beyond the test: logged like any write, invisible to the model.
                    r.expire(k, 100000)
                elif op == 7:
                    v = "m%d" % step
                    s = Raw(srv.mc_port)
                    s.send(b"set %s 0 0 %d\r\n%s\r\n" % (k.encode(), len(v), v.encode()))
                    self.assertEqual(s.read_until(b"\r\n"), b"STORED\r\n")
                    s.close()
                    model[k] = ("string", v)
                elif op == 8 and kind == "string":
                    r.getdel(k)
                    model.pop(k)
                elif op == 9 and kind in (None, "list"):
                    lst = list(model[k][1]) if kind else []
                    if rng.randrange(3) and lst:
                        self.assertEqual(r.lpop(k), lst.pop(0))
                    else:
                        r.rpush(k, step)
                        lst.append(str(step))
                    if lst:
                        model[k] = ("list", lst)
                    else:
                        model.pop(k)
                elif op == 10 and kind in (None, "zset"):
                    z = dict(model[k][1]) if kind else {}
                    m = "m%d" % rng.randrange(8)
                    if rng.randrange(3):
                        z[m] = r.zincrby(k, rng.randrange(-4, 5) / 2, m)
                    else:
                        r.zrem(k, m)
                        z.pop(m, None)
                    if z:
                        model[k] = ("zset", z)
                    else:
                        model.pop(k, None)
                if step == 1500:
                    # Half the history in a snapshot, half in the log after it.
                    r.execute_command("SAVE")
            srv.proc.kill()
            srv.proc.wait()
            srv.proc = None
            srv = durable(datadir)
            srv.start()
            r = redis.Redis(port=srv.port, decode_responses=True)
            got = {}
            for k in keys:
                t = r.type(k)
                if t == "string":
                    got[k] = ("string", r.get(k))
                elif t == "hash":
                    got[k] = ("hash", r.hgetall(k))
                elif t == "set":
                    got[k] = ("set", r.smembers(k))
                elif t == "list":
                    got[k] = ("list", r.lrange(k, 0, -1))
                elif t == "zset":
                    got[k] = ("zset", dict(r.zrange(k, 0, -1, withscores=True)))
            self.assertEqual(got, model)
            srv.stop()
        finally:
            shutil.rmtree(datadir, ignore_errors=True)


class CrashTest(unittest.TestCase):
    """kill -9 under a writing client: every acknowledged write is there after the restart."""

    def test_no_acknowledged_write_is_lost(self):
        datadir = tempfile.mkdtemp(prefix="tally-crash-")
        rng = random.Random(SEED)
        acked_sets = {}
        acked_counters = {}
        lost_total = 0
        try:
            for rnd in range(CRASH_ROUNDS):
                srv = durable(datadir)
                srv.start()
                # What survived earlier rounds must still be there.
                r = redis.Redis(port=srv.port, socket_timeout=5)
                sample = rng.sample(sorted(acked_sets), min(200, len(acked_sets)))
                if sample:
                    values = r.mget(sample)
                    for k, v in zip(sample, values):
                        if v != acked_sets[k]:
                            lost_total += 1
                for c, n in acked_counters.items():
                    v = r.get(c)
                    if v is None or int(v) < n:
                        lost_total += 1
                stop = threading.Event()
                errors = []

                def writer(wid):
                    w = redis.Redis(port=srv.port, socket_timeout=5)
                    i = 0
                    while not stop.is_set():
                        i += 1
                        key = "r%d:w%d:%d" % (rnd, wid, i)
                        val = ("v%d" % i).encode()
                        try:
                            pipe = w.pipeline(transaction=False)
                            pipe.set(key, val)
                            pipe.incr("ctr%d" % wid)
                            ok, n = pipe.execute()
                        except (redis.ConnectionError, redis.TimeoutError, ConnectionResetError):
                            return
                        except redis.ResponseError as e:
                            errors.append(str(e))
                            return
                        if ok:
                            acked_sets[key] = val
                            acked_counters["ctr%d" % wid] = max(acked_counters.get("ctr%d" % wid, 0), n)

                threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(0.1, 0.6))
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait()
                stop.set()
                for t in threads:
                    t.join()
                srv.proc = None
                self.assertEqual(errors, [])
            # The last round's writes, checked in full.
            srv = durable(datadir)
            srv.start()
            r = redis.Redis(port=srv.port)
            keys = sorted(acked_sets)
            for i in range(0, len(keys), 1000):
                chunk = keys[i:i + 1000]
                for k, v in zip(chunk, r.mget(chunk)):
                    if v != acked_sets[k]:
                        lost_total += 1
            for c, n in acked_counters.items():
                v = r.get(c)
                if v is None or int(v) < n:
                    lost_total += 1
            srv.stop()
            print("crash rounds: %d, acknowledged writes: %d, lost: %d" %
                  (CRASH_ROUNDS, len(acked_sets) + sum(acked_counters.values()), lost_total))
            self.assertEqual(lost_total, 0)
            self.assertGreater(len(acked_sets), CRASH_ROUNDS)
        finally:
            shutil.rmtree(datadir, ignore_errors=True)


class DiskFaultTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tally-faults-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def segments(self):
        out = []
        for root, _, files in os.walk(os.path.join(self.dir, "wal")):
            for f in files:
                if f.endswith(".wal"):
                    out.append(os.path.join(root, f))
        return sorted(out)

    @staticmethod
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    def last_record_offset(self, path):
        """The offset of the last record in a segment (records are 8-byte aligned after a 64-byte header)."""
        with open(path, "rb") as f:
            data = f.read()
        at, last = 64, None
        while at + 48 <= len(data) and data[at:at + 48] != bytes(48):
            size = int.from_bytes(data[at + 8:at + 12], "little")
            last = at
            at += 48 + ((size + 7) & ~7)
        return last, at

    def test_a_torn_tail_is_truncated_and_everything_before_it_kept(self):
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        for i in range(20):
            r.set("k%d" % i, "v%d" % i)
        srv.proc.kill()
        srv.proc.wait()
        srv.proc = None
        # The newest segment holding records (the ones after it are preallocated and empty).
        seg, last, end = [(s,) + self.last_record_offset(s) for s in self.segments()
                          if self.last_record_offset(s)[0] is not None][-1]
        # The last record loses its second half, as if the crash came mid-write.
        with open(seg, "r+b") as f:
            f.seek(last + 24)
            f.write(bytes(end - last - 24))
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        self.assertIn("torn tail", srv.output())
        self.assertEqual(r.get("k0"), b"v0")
        srv.stop()

    def test_corruption_in_the_middle_is_reported_and_never_served(self):
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        for i in range(200):
            r.set("k%d" % i, "value-%d" % i)
        srv.stop()
        seg = [s for s in self.segments() if b"value-50" in self.read(s)][0]
        # A bit flip in the payload of a record in the middle of the log.
        with open(seg, "r+b") as f:
            data = f.read()
            at = data.index(b"value-50")
            f.seek(at)
            f.write(b"valuE")
        verify = subprocess.run([TALLYCTL, "wal", "verify", self.dir], capture_output=True, text=True)
        self.assertEqual(verify.returncode, 2, verify.stdout + verify.stderr)
        self.assertIn(os.path.basename(seg), verify.stdout)
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        with self.assertRaises(redis.ResponseError) as ctx:
            r.get("k50")
        self.assertIn("unavailable", str(ctx.exception))
        self.assertIn("offset", str(ctx.exception))
        # Partitions the bad record does not touch go on serving.
        served = 0
        for i in range(200):
            try:
                if r.get("k%d" % i) == ("value-%d" % i).encode():
                    served += 1
            except redis.ResponseError:
                pass
        self.assertGreater(served, 0)
        srv.stop()
        # An explicit truncate repairs the single node; what came after the bad record is gone.
        # "corruption at <dir>/wal/shard-NNN/<SEQ>.wal:<OFFSET> group G: what"
        where = [l for l in verify.stdout.splitlines() if "corruption at" in l][0].split()[2]
        path, offset = where.rsplit(":", 1)
        shard = str(int(os.path.basename(os.path.dirname(path))[len("shard-"):]))
        seq = str(int(os.path.basename(path)[:-len(".wal")]))
        truncate = subprocess.run([TALLYCTL, "wal", "truncate", self.dir, "--shard", shard, "--at", seq + ":" + offset],
                                  capture_output=True, text=True)
        self.assertEqual(truncate.returncode, 0, truncate.stdout + truncate.stderr)
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        self.assertEqual(r.get("k0"), b"value-0")
        srv.stop()

    def test_a_damaged_header_keeps_every_partition_of_its_log_down(self):
        # A damaged header hides its record's partition. Here every record of the partition of
        # "lonely" (its entry and its hard state) is damaged, so nothing left in the log names that
        # partition: it must stay down all the same, as must every other partition of the log.
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        lonely = key_slot(b"lonely") // 1024  # 16 partitions
        self.assertNotEqual(lonely, key_slot(b"a") // 1024)
        for i in range(200):
            r.set("{a}k%d" % i, "value-%d" % i)
            if i == 100:
                r.set("lonely", "only-record")
        srv.stop()
        seg = [s for s in self.segments() if b"only-record" in self.read(s)][0]
        data = bytearray(self.read(seg))
        off, damaged = 64, []  # walk the records (docs/wal-format.md)
        while off + 48 <= len(data) and any(data[off:off + 48]):
            length = int.from_bytes(data[off + 8:off + 12], "little")
            if int.from_bytes(data[off + 16:off + 20], "little") == lonely:
                damaged.append(off)
            end = off + 48 + (length + 7) // 8 * 8
            if off in damaged:
                data[off + 8] ^= 0x10  # the length: the header checksum fails
            off = end
        self.assertGreaterEqual(len(damaged), 2)
        with open(seg, "r+b") as f:
            f.write(data)
        verify = subprocess.run([TALLYCTL, "wal", "verify", self.dir], capture_output=True, text=True)
        self.assertEqual(verify.returncode, 2, verify.stdout + verify.stderr)
        self.assertIn("every partition of this shard", verify.stdout)
        srv = durable(self.dir, threads=1)
        srv.start()
        r = redis.Redis(port=srv.port)
        for key in ("{a}k0", "{a}k199", "lonely"):
            with self.assertRaises(redis.ResponseError) as ctx:
                r.get(key)
            self.assertIn("partition unknown", str(ctx.exception))
            self.assertIn("offset %d" % damaged[0], str(ctx.exception))
        srv.stop()

@unittest.skipUnless(os.geteuid() == 0 and shutil.which("mount"), "needs root to mount a small tmpfs")
class FullDiskTest(unittest.TestCase):
    def test_a_full_disk_refuses_writes_keeps_reads_and_recovers(self):
        mnt = tempfile.mkdtemp(prefix="tally-tmpfs-")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt]).returncode != 0:
            self.skipTest("mount tmpfs failed")
        try:
            datadir = os.path.join(mnt, "data")
            srv = durable(datadir, "--wal-segment-bytes", "1mb", threads=1)
            srv.start()
            r = redis.Redis(port=srv.port)
            r.set("before", "1")
            value = "x" * 20000
            full = None
            for i in range(2000):
                try:
                    r.set("big%d" % i, value)
                except redis.ResponseError as e:
                    full = str(e)
                    break
            self.assertIsNotNone(full, "the disk never filled")
            self.assertIn("disk full", full)
            self.assertEqual(r.get("before"), b"1")  # reads go on
            info = r.info("persistence")
            self.assertEqual(info["wal_failed"], 1)
            # Room again: the log prepares its next segment on a tick and writes resume.
            subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
            deadline = time.time() + 10
            while True:
                try:
                    r.set("after", "1")
                    break
                except redis.ResponseError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            self.assertEqual(r.get("after"), b"1")
            srv.stop()
        finally:
            subprocess.run(["umount", mnt])
            os.rmdir(mnt)


if __name__ == "__main__":
    unittest.main(verbosity=2)
