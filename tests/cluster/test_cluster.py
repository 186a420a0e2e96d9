"""A three-node cluster of real tallyd members on loopback: formation, Redis Cluster routing with real
clients, replicas that converge, a killed leader (writes resume, nothing acknowledged is lost), a
minority that refuses to serve, a full restart, and the formation's refusals."""
import os
import re
import socket
import subprocess
import threading
import time
import unittest

import redis
from redis.cluster import RedisCluster

from cluster_harness import TALLYCTL, Cluster, free_port


def digests(cluster):
    return [m.client().execute_command("TALLY", "DIGEST") for m in cluster.alive()]


def retry_tryagain(fn, deadline_s=10):
    """fn() until it answers something other than TRYAGAIN (a partition changing leader meanwhile:
    a command over every partition meets one now and then while leadership is being balanced)."""
    deadline = time.time() + deadline_s
    while True:
        try:
            return fn()
        except redis.ResponseError as e:
            if not str(e).startswith("TRYAGAIN") or time.time() > deadline:
                raise
            time.sleep(0.05)


def wait_converged(cluster, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = digests(cluster)
        if len(set(d)) == 1:
            return d[0]
        time.sleep(0.1)
    raise AssertionError("replicas did not converge: %s" % digests(cluster))


class FormationTest(unittest.TestCase):
    def test_clients_and_tools_work_against_the_cluster(self):
        with Cluster() as c:
            a, b, _ = c.members
            # Every range has a leader and two replicas, and the ranges cover every slot.
            slots = a.client().execute_command("CLUSTER", "SLOTS")
            covered = sum(last - first + 1 for first, last, *_ in slots)
            self.assertEqual(covered, 16384)
            self.assertTrue(all(len(r) == 5 for r in slots), "master and two replicas per range")
            info = a.info()
            self.assertEqual((info["cluster_formed"], info["cluster_nodes"], info["cluster_replicas"]), (1, 3, 3))
            # A write through a node that does not lead the key's partition is redirected to the one that does.
            leader = c.leader_of("foo")
            other = [m for m in c.members if m is not leader][0]
            with self.assertRaisesRegex(redis.ResponseError, r"^MOVED 12182 127\.0\.0\.1:%d$" % leader.port):
                other.client().set("foo", "x")
            self.assertTrue(leader.client().set("foo", "x"))
            # redis-cli follows the redirect; --cluster check agrees on the configuration and coverage.
            out = subprocess.run(["redis-cli", "-c", "-p", str(other.port), "SET", "k", "v"], capture_output=True,
                                 text=True, timeout=20)
            self.assertEqual(out.stdout.strip(), "OK")
            out = subprocess.run(["redis-cli", "-c", "-p", str(b.port), "GET", "k"], capture_output=True, text=True,
                                 timeout=20)
            self.assertEqual(out.stdout.strip(), "v")
            check = subprocess.run(["redis-cli", "--cluster", "check", "127.0.0.1:%d" % a.port], capture_output=True,
                                   text=True, timeout=30)
            text = re.sub(r"\x1b\[[0-9;]*m", "", check.stdout)
            self.assertEqual(check.returncode, 0, text + check.stderr)
            self.assertIn("[OK] All 16384 slots covered.", text)
            # redis-benchmark in cluster mode spreads its keys over every leader.
            bench = subprocess.run(["redis-benchmark", "--cluster", "-p", str(a.port), "-t", "set,get", "-n", "20000",
                                    "-c", "20", "-q"], capture_output=True, text=True, timeout=120)
            self.assertEqual(bench.returncode, 0, bench.stdout + bench.stderr)
            self.assertRegex(bench.stdout, r"SET: [0-9.]+ requests per second")
            self.assertRegex(bench.stdout, r"GET: [0-9.]+ requests per second")
            # FLUSHALL on every node empties the cluster: each node flushes the partitions it leads.
            for m in c.members:
                self.assertTrue(m.client().flushall())
            self.assertEqual(sum(m.client().dbsize() for m in c.members), 0)
            # redis-py's cluster client, from any node.
            rc = RedisCluster(host="127.0.0.1", port=b.port, decode_responses=True)
            rc.mset_nonatomic({"u%d" % i: str(i) for i in range(300)})
            self.assertEqual(rc.mget_nonatomic(["u%d" % i for i in range(300)]), [str(i) for i in range(300)])
            self.assertEqual(rc.incr("counter"), 1)
            # Keyless commands cover the partitions a node leads, so the nodes' counts add up to the keys.
            self.assertEqual(sum(m.client().dbsize() for m in c.members), 301)
            self.assertEqual(sum(len(m.client().keys("u*")) for m in c.members), 300)
            self.assertEqual(sum(len(list(m.client().scan_iter(match="u*", count=17))) for m in c.members), 300)
            rc.close()

    def test_four_nodes_with_three_replicas_route_every_key(self):
        # Each partition lives on 3 of the 4 nodes; a node redirects keys it holds no replica of to
        # their leader, which it learns from the leaders' announcements.
        with Cluster(n=4) as c:
            self.assertEqual(c.members[0].info()["cluster_replicas"], 3)
            for first, last, *nodes in c.members[3].client().execute_command("CLUSTER", "SLOTS"):
                self.assertEqual(len(nodes), 3)
            keys = ["q%d" % i for i in range(200)]
            for m in c.members:
                for k in keys[:50]:
                    self.assertTrue(c.call("SET", k, m.port, key=k, start=m))
            for k in keys:
                c.call("SET", k, "v-" + k, key=k)
            check = subprocess.run(["redis-cli", "--cluster", "check", "127.0.0.1:%d" % c.members[1].port],
                                   capture_output=True, text=True, timeout=30)
            self.assertIn("[OK] All 16384 slots covered.", re.sub(r"\x1b\[[0-9;]*m", "", check.stdout))
            c.members[2].kill()
            c.wait_for_leaders()
            self.assertEqual([c.call("GET", k, key=k) for k in keys], ["v-" + k for k in keys])
            self.assertTrue(c.call("SET", "after", "1", key="after"))
            # A client that does not follow redirects (memcached) is refused for partitions a node does not hold.
            r = c.members[0].client()
            slots_here = set()
            for first, last, *nodes in r.execute_command("CLUSTER", "SLOTS"):
                if any(n[1] == c.members[0].port for n in nodes):
                    slots_here.update(range(first, last + 1))
            self.assertLess(len(slots_here), 16384)

    def test_zones_spread_each_partitions_replicas(self):
        # Formation order a, a, b, b: placement by order alone would keep half the partitions in one zone.
        zones = [("--zone", "a", "--rack", "r1"), ("--zone", "a", "--rack", "r2"), ("--zone", "b"), ("--zone", "b")]
        with Cluster(n=4, member_extra=zones, replicas=2) as c:
            zone_of = {m.port: z[1] for m, z in zip(c.members, zones)}
            for m, z in zip(c.members, zones):
                info = m.info()
                self.assertEqual(info["cluster_zone"], z[1])
                self.assertEqual(info["cluster_zones"], 2)
                self.assertEqual(info["cluster_partitions_in_one_zone"], 0)
                self.assertEqual(m.client().config_get("zone")["zone"], z[1])
            self.assertEqual(c.members[0].info()["cluster_rack"], "r1")
            shards = c.members[0].client().execute_command("CLUSTER", "SHARDS")
            self.assertGreater(len(shards), 0)
            for shard in shards:
                shard = dict(zip(shard[::2], shard[1::2]))
                ports = [dict(zip(n[::2], n[1::2]))["port"] for n in shard["nodes"]]
                self.assertEqual(len(ports), 2)
                self.assertEqual({zone_of[int(p)] for p in ports}, {"a", "b"}, shard["slots"])
            for i in range(50):
                self.assertTrue(c.call("SET", "z%d" % i, "v", key="z%d" % i))

    def test_leadership_is_spread_over_the_nodes(self):
        # Elections alone leave it uneven; nodes over their share hand partitions to replicas under it,
        # also after a node comes back from a failure.
        def spread(c, timeout=15):
            deadline = time.time() + timeout
            led = []
            while time.time() < deadline:
                led = [m.info()["cluster_partitions_led"] for m in c.members]
                if sum(led) == 256 and max(led) - min(led) <= 2:
                    return led
                time.sleep(0.2)
            self.fail("leadership not spread: %s" % led)

        with Cluster() as c:
            spread(c)
            c.members[0].kill()
            c.wait_for_leaders(members=c.members[1:])
            c.members[0].start()
            c.wait_for_leaders()
            led = spread(c)
            self.assertGreater(led[0], 0, "the restarted node leads its share again")

    def test_replicas_hold_the_same_data(self):
        with Cluster() as c:
            for i in range(500):
                c.call("SET", "key:%d" % i, "value:%d" % i, key="key:%d" % i)
            digest = wait_converged(c)
            self.assertNotEqual(digest, "0000000000000000")

    def test_formation_refusals(self):
        with Cluster() as c:
            a = c.members[0]
            myid = a.client().execute_command("CLUSTER", "MYID")
            with self.assertRaisesRegex(redis.ResponseError, "already a member"):
                a.client().execute_command("TALLY", "CLUSTER-SETUP", "1", "1", myid, "127.0.0.1", a.port, a.peer_port)
        # A node that is not a member, and a setup that names another node as this one.
        from cluster_harness import Member
        c2 = Cluster(n=1)
        try:
            m = c2.members[0]
            m.start()
            r = m.client()
            with self.assertRaisesRegex(redis.ResponseError, "not formed"):
                r.set("a", "1")
            with self.assertRaisesRegex(redis.ResponseError, "but this node is"):
                r.execute_command("TALLY", "CLUSTER-SETUP", "1", "1", "a" * 40, "127.0.0.1", m.port, m.peer_port)
            with self.assertRaisesRegex(redis.ResponseError, "usage"):
                r.execute_command("TALLY", "CLUSTER-SETUP", "1")
        finally:
            c2.stop()


class FaultTest(unittest.TestCase):
    def test_a_killed_leader_loses_nothing_acknowledged_and_writes_resume(self):
        with Cluster() as c:
            acked = {}
            stop = threading.Event()
            errors = []

            def writer(prefix):
                i = 0
                while not stop.is_set():
                    key = "%s:%d" % (prefix, i)
                    try:
                        if c.call("SET", key, str(i), key=key, deadline_s=5) is True:
                            acked[key] = str(i)
                    except Exception as e:  # an unacknowledged write: its outcome is unknown
                        errors.append(repr(e))
                    i += 1

            threads = [threading.Thread(target=writer, args=("w%d" % t,)) for t in range(3)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            victim = c.leader_of("w0:0")
            probe_slot_key = "w0:0"
            victim.kill()
            t_kill = time.time()
            # Writes to a partition the victim led resume once a survivor leads it.
            c.call("SET", probe_slot_key, "after", key=probe_slot_key, deadline_s=10)
            resumed = time.time() - t_kill
            acked[probe_slot_key] = "after"
            time.sleep(1.0)
            victim.start()
            c.wait_for_leaders()
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join()
            self.assertLess(resumed, 5.0, "writes resumed %.2f s after the kill" % resumed)
            self.assertGreater(len(acked), 50)
            missing = [k for k, v in acked.items() if c.call("GET", k, key=k) != v]
            self.assertEqual(missing, [], "acknowledged writes lost")
            wait_converged(c)
            print("writes resumed %.3f s after kill -9 of the leader; %d acknowledged writes, 0 lost, %d refused"
                  % (resumed, len(acked), len(errors)))

    def test_a_minority_refuses_reads_and_writes_until_a_majority_is_back(self):
        with Cluster() as c:
            c.call("SET", "k", "before", key="k")
            leader = c.leader_of("k")
            b, d = [m for m in c.members if m is not leader]
            a = leader
            b.kill()
            d.kill()
            # A write the leader takes now cannot commit; once the leader steps down (it hears from no
            # majority), the write is answered as of unknown outcome, not left hanging.
            t0 = time.time()
            with self.assertRaisesRegex(redis.ResponseError, "outcome is unknown|^TRYAGAIN|^MOVED"):
                a.client(timeout=10).set("k", "during")
            self.assertLess(time.time() - t0, 5.0)
            time.sleep(1.5)  # past an election timeout: a's groups can no longer confirm leadership
            r = a.client()
            for attempt in range(5):
                for cmd in (("SET", "k", "during"), ("GET", "k")):
                    try:
                        reply = r.execute_command(*cmd)
                        self.fail("a minority answered %s with %r" % (cmd, reply))
                    except redis.ResponseError as e:
                        self.assertRegex(str(e), r"^(MOVED|TRYAGAIN)")
                time.sleep(0.1)
            b.start()
            c.wait_for_leaders(members=[a, b])
            # The write of unknown outcome may have taken effect once a majority was back (its entry was
            # in the old leader's log): either value is right, nothing else.
            self.assertIn(c.call("GET", "k", key="k"), ("before", "during"))
            self.assertTrue(c.call("SET", "k", "after", key="k"))
            d.start()
            c.wait_for_leaders()
            self.assertEqual(c.call("GET", "k", key="k", start=d), "after")

    def test_a_paused_leader_never_serves_a_stale_read(self):
        # SIGSTOP the leader, let the others elect a new one and write, queue a read on the old leader's
        # socket, SIGCONT it: the read must see the new value or be refused, never the old value.
        import signal
        with Cluster() as c:
            stale = 0
            for trial in range(5):
                key = "p%d" % trial
                c.call("SET", key, "old", key=key)
                old = c.leader_of(key)
                others = [m for m in c.members if m is not old]
                # Connected (and being read) before the pause, so the read is in the old leader's first
                # batch of events after it resumes, beside its peers' news.
                s = socket.create_connection(("127.0.0.1", old.port), timeout=10)
                s.sendall(b"PING\r\n")
                self.assertEqual(s.recv(16), b"+PONG\r\n")
                old.proc.send_signal(signal.SIGSTOP)
                try:
                    c.wait_for_leaders(members=others)
                    self.assertTrue(c.call("SET", key, "new", key=key, start=others[0]))
                    s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key.encode()))
                finally:
                    old.proc.send_signal(signal.SIGCONT)
                data = b""
                while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                self.assertNotEqual(data, b"$3\r\nold\r\n", "a deposed leader served a stale read")
                self.assertTrue(data in (b"$3\r\nnew\r\n",) or data.startswith((b"-MOVED", b"-TRYAGAIN")), data)
                c.wait_for_leaders()

    def test_a_replica_far_behind_catches_up_from_a_snapshot(self):
        # Groups keep 16 entries for laggards here: a replica down for 2000 writes needs a snapshot.
        with Cluster(extra=("--partitions", "4", "--cluster-log-entries-kept", "16")) as c:
            late = c.members[2]
            late.kill()
            live = c.members[:2]
            c.wait_for_leaders(members=live)
            for i in range(2000):
                c.call("SET", "s%d" % i, str(i), key="s%d" % i)
            late.start()
            c.wait_for_leaders()
            wait_converged(c)
            info = late.info()
            self.assertGreater(info["cluster_snapshots_installed"], 0)
            # The caught-up replica serves the data once it leads: stop the others one at a time.
            for m in live:
                m.stop()
                c.wait_for_leaders(members=c.alive())
                m.start()
                c.wait_for_leaders()
            self.assertEqual([c.call("GET", "s%d" % i, key="s%d" % i, start=late) for i in range(0, 2000, 97)],
                             [str(i) for i in range(0, 2000, 97)])
            wait_converged(c)

    def test_the_whole_cluster_restarts_with_its_data(self):
        with Cluster() as c:
            for i in range(200):
                c.call("SET", "r%d" % i, str(i), key="r%d" % i)
            before = wait_converged(c)
            for m in c.members:
                m.stop()
            for m in c.members:
                m.start()
            c.wait_for_leaders()
            self.assertEqual(wait_converged(c), before)
            self.assertEqual([c.call("GET", "r%d" % i, key="r%d" % i) for i in range(200)],
                             [str(i) for i in range(200)])

    def test_a_peer_that_sends_garbage_is_dropped_and_the_node_keeps_serving(self):
        with Cluster() as c:
            a = c.members[0]
            with socket.create_connection(("127.0.0.1", a.peer_port), timeout=5) as s:
                s.sendall(b"\x00GARBAGE" * 100)
                s.settimeout(5)
                try:
                    data = s.recv(4096)
                    while data:
                        data = s.recv(4096)
                except ConnectionResetError:
                    pass
            self.assertTrue(c.call("SET", "x", "1", key="x"))
            self.assertEqual(c.call("GET", "x", key="x"), "1")
            def refused():
                i = a.info()
                return sum(i[k] for k in ("peer_malformed", "peer_auth_failures", "peer_checksum_failures",
                                          "peer_oversize", "peer_handshake_timeouts"))
            deadline = time.time() + 5
            while refused() == 0 and time.time() < deadline:
                time.sleep(0.1)
            self.assertGreater(refused(), 0, "the garbage connection was counted")

    def test_a_member_that_lies_in_forwards_is_refused_and_counted(self):
        # A peer that holds the secret (it passes the handshake as node 3) sends forwards that no correct
        # member would: unparsable, an unknown command, a key outside the partition named, a keyless
        # command. Each is refused and counted, none runs, and the node keeps serving; a correct forward
        # from the same peer runs (so the refusals are the checks, not a dead path).
        from redis.crc import key_slot
        from peer_client import FORWARD, FORWARD_REPLY, Peer, forward_payload
        with Cluster() as c:
            a = c.members[0]
            with open(c.secret, "rb") as f:
                secret = f.read().strip()

            def partition(key):
                return key_slot(key.encode()) >> 6  # 256 partitions over 16384 slots

            led = [k for k in ("lie%d" % i for i in range(200)) if c.leader_of(k) is a]
            good, other = led[0], next(k for k in led[1:] if partition(k) != partition(led[0]))
            # The real node 3 is paused, so it does not dial again and replace this connection.
            import signal
            c.members[2].proc.send_signal(signal.SIGSTOP)
            peer = None
            try:
                peer = Peer(a.peer_port, 3, 1, secret)
                before = a.info()["cluster_forward_refused"]
                lies = [
                    b"\x01\x02\x03",                                                       # short
                    forward_payload(1, 99999, ["SET", good, "x"]),                        # no such partition
                    forward_payload(2, partition(good), ["NOSUCHCOMMAND", good]),         # unknown command
                    forward_payload(3, partition(good), ["SET", other, "stolen"]),        # key elsewhere
                    forward_payload(4, partition(good), ["MULTI"]),                       # a transaction
                    forward_payload(5, partition(good), ["SCAN", "0"]),                   # keyless, not per part
                    forward_payload(6, partition(good), ["SET", good]),                   # wrong arity
                    forward_payload(7, partition(good), ["SET", good, "x"]) + b"tail",   # bytes after
                ]
                for payload in lies:
                    peer.send(FORWARD, payload)
                peer.send(FORWARD_REPLY, b"\x00" * 9 + b"garbage")  # a reply to nothing asked
                deadline = time.time() + 10
                while time.time() < deadline and a.info()["cluster_forward_refused"] - before < len(lies):
                    time.sleep(0.05)
                self.assertEqual(a.info()["cluster_forward_refused"] - before, len(lies))
                self.assertIsNone(c.call("GET", other, key=other))
                # A correct forward runs (for a key node 1 leads when it arrives: leadership may move).
                honest = None
                for attempt in range(40):
                    key = "honest%d" % attempt
                    if c.leader_of(key) is not a:
                        continue
                    peer.send(FORWARD, forward_payload(100 + attempt, partition(key), ["SET", key, "v"]))
                    t0 = time.time()
                    while time.time() - t0 < 2 and honest is None:
                        if c.call("GET", key, key=key) == "v":
                            honest = key
                        time.sleep(0.05)
                    if honest:
                        break
                self.assertIsNotNone(honest, "a correct forward from the same peer ran")
            finally:
                if peer is not None:
                    peer.close()
                c.members[2].proc.send_signal(signal.SIGCONT)
            c.wait_for_leaders()
            self.assertTrue(c.call("SET", "after", "1", key="after"))
            self.assertIsNone(a.proc.poll())

    def test_a_node_without_the_secret_is_refused_and_counted(self):
        from cluster_harness import Member
        with Cluster() as c:
            # An impostor formed with the same nodes plus itself, but another secret, dials them all.
            other = os.path.join(c.parent, "other-secret")
            with open(other, "w") as f:
                f.write("not-the-cluster-secret-at-all")
            imp = Member(c, 4, free_port(), free_port(), other)
            imp.start()
            try:
                myid = imp.client().execute_command("CLUSTER", "MYID")
                args = []
                for m in c.members:
                    args += [m.client().execute_command("CLUSTER", "MYID"), "127.0.0.1", m.port, m.peer_port]
                args += [myid, "127.0.0.1", imp.port, imp.peer_port]
                imp.client().execute_command("TALLY", "CLUSTER-SETUP", "4", "3", *args)
                deadline = time.time() + 10
                while time.time() < deadline and sum(m.info()["peer_auth_failures"] for m in c.members) == 0:
                    time.sleep(0.1)
                self.assertGreater(sum(m.info()["peer_auth_failures"] for m in c.members), 0)
                # The cluster never heard from it, and keeps serving.
                self.assertTrue(c.call("SET", "y", "2", key="y"))
                self.assertEqual(imp.info()["cluster_raft_messages_in"], 0)
            finally:
                imp.stop()


class ReplicaReadTest(unittest.TestCase):
    def test_readonly_clients_read_from_replicas(self):
        import signal
        from redis.crc import key_slot
        with Cluster(extra=("--change-stream", "yes")) as c:
            keys = ["r%d" % i for i in range(60)]
            for k in keys:
                c.call("SET", k, "v-" + k, key=k)
            wait_converged(c)
            for m in c.members:
                r = m.client()
                led = [k for k in keys if c.leader_of(k) is m]
                followed = [k for k in keys if k not in led]
                self.assertTrue(followed)
                # Without READONLY a replica redirects; with it, it answers from what it applied.
                with self.assertRaisesRegex(redis.ResponseError, r"^MOVED"):
                    r.get(followed[0])
                self.assertTrue(r.execute_command("READONLY"))
                self.assertIn("flags=r ", r.execute_command("CLIENT", "INFO"))
                self.assertEqual([r.get(k) for k in keys], ["v-" + k for k in keys])
                self.assertEqual(r.execute_command("STRLEN", followed[0]), len("v-" + followed[0]))
                # Writes still go to the leader.
                with self.assertRaisesRegex(redis.ResponseError, r"^MOVED"):
                    r.set(followed[0], "x")
                self.assertTrue(r.execute_command("READWRITE"))
                with self.assertRaisesRegex(redis.ResponseError, r"^MOVED"):
                    r.get(followed[0])
            # redis-py's cluster client sends READONLY to every node and spreads its reads over replicas.
            rc = RedisCluster(host="127.0.0.1", port=c.members[0].port, decode_responses=True,
                              read_from_replicas=True)
            self.assertEqual([rc.get(k) for k in keys * 3], ["v-" + k for k in keys * 3])
            rc.set(keys[0], "changed")
            # Every replica applies the write soon after it is acknowledged.
            readers = [m.client() for m in c.members]
            for r in readers:
                r.execute_command("READONLY")
            deadline = time.time() + 5
            while time.time() < deadline and {r.get(keys[0]) for r in readers} != {"changed"}:
                time.sleep(0.02)
            self.assertEqual({r.get(keys[0]) for r in readers}, {"changed"})
            rc.close()
            # A blocked XREAD of the change stream on a replica wakes when the replica applies a write.
            rows = c.members[0].client().execute_command("TALLY", "CHANGES")
            stream = next(row[1] for row in rows if row[2] <= key_slot(b"w") <= row[3])
            follower = [m for m in c.members if m is not c.leader_of("w")][0]
            r = follower.client(timeout=10)
            r.execute_command("READONLY")
            threading.Timer(0.3, lambda: c.call("SET", "w", "x", key="w")).start()
            got = r.execute_command("XREAD", "BLOCK", "5000", "STREAMS", stream, "$")
            self.assertEqual(got[0][1][0][1]["key"], "w")
            # A replica cut off from its leader stops serving within the election timeout: with the two
            # other members paused, the third answers TRYAGAIN for every key, never an old value.
            lone = c.members[0]
            others = c.members[1:]
            for m in others:
                m.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(2.5)
                r = lone.client()
                r.execute_command("READONLY")
                for k in keys:
                    with self.assertRaisesRegex(redis.ResponseError, r"^(TRYAGAIN|MOVED)"):
                        r.get(k)
            finally:
                for m in others:
                    m.proc.send_signal(signal.SIGCONT)
            c.wait_for_leaders()


class ForwardingTest(unittest.TestCase):
    """Clients that cannot follow -MOVED: memcached clients (pymemcache, libmemcached's tools) and,
    with cluster_forward_resp, plain RESP clients get every key through any member, which forwards
    commands for partitions led elsewhere to their leaders."""

    def test_memcached_clients_work_against_any_member(self):
        import signal
        from pymemcache.client.base import Client
        from pymemcache.exceptions import MemcacheServerError
        ports = [free_port() for _ in range(3)]
        with Cluster(member_extra=[("--memcached-port", str(p), "--cluster-forward-timeout-ms", "3000")
                                   for p in ports]) as c:
            clients = [Client(("127.0.0.1", p), timeout=10) for p in ports]
            keys = ["m%d" % i for i in range(120)]
            for i, k in enumerate(keys):
                self.assertTrue(clients[i % 3].set(k, ("v-" + k).encode()))
            for mc in clients:
                self.assertEqual([mc.get(k) for k in keys], [("v-" + k).encode() for k in keys])
                got = mc.get_many(keys)  # one request whose keys lie in many partitions
                self.assertEqual(got, {k: ("v-" + k).encode() for k in keys})
            # Compare-and-swap, counters, add and delete through members that do not lead the key.
            k = keys[0]
            led_by = c.leader_of(k)
            other = clients[[m.port for m in c.members].index([m for m in c.members if m is not led_by][0].port)]
            value, cas = other.gets(k)
            self.assertTrue(other.cas(k, b"swapped", cas))
            self.assertFalse(other.cas(k, b"again", cas))
            self.assertEqual(other.get(k), b"swapped")
            self.assertTrue(other.set("n", b"10"))
            self.assertEqual(other.incr("n", 5), 15)
            self.assertFalse(other.add("n", b"1", noreply=False))
            self.assertTrue(other.delete("n", noreply=False))
            self.assertIsNone(clients[2].get("n"))
            # libmemcached's command-line tools, against one member.
            out = subprocess.run(["memccat", "--servers=127.0.0.1:%d" % ports[1]] + keys[1:40], capture_output=True,
                                 text=True, timeout=20)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.split(), ["v-" + k for k in keys[1:40]])
            self.assertGreater(sum(m.info()["cluster_forwarded_out"] for m in c.members), 100)
            self.assertEqual(sum(m.info()["cluster_forwarded_in"] for m in c.members),
                             sum(m.info()["cluster_forwarded_out"] for m in c.members))
            # The forwarded writes are replicated like any other.
            wait_converged(c)
            # A leader that stops answering: a forwarded command is answered with an error within the
            # forward timeout, never left hanging, and the member keeps serving what it leads.
            from redis.crc import key_slot
            stopped = c.members[2]
            asker = clients[0]
            mine = [k for k in keys[1:] if c.leader_of(k) is c.members[0]]
            stopped.proc.send_signal(signal.SIGSTOP)
            try:
                # A key the asker still routes to the paused member (its hint changes only once the
                # others have elected a new leader, half a second or more from now).
                slots = c.members[0].client().execute_command("CLUSTER", "SLOTS")
                theirs = [k for k in keys[1:] if any(first <= key_slot(k.encode()) <= last and master[1] == stopped.port
                                                     for first, last, master, *_ in slots)]
                # Sent at once, both to the paused leader: the read is sent again to the leader
                # elected meanwhile and answered; the write is not (its outcome would be unknown) and
                # is answered with an error when its time runs out, never left hanging.
                outcome = {}
                writer = Client(("127.0.0.1", ports[0]), timeout=10)

                def write():
                    try:
                        writer.set(theirs[0], b"during", noreply=False)
                        outcome["write"] = "stored"
                    except MemcacheServerError as e:
                        outcome["write"] = e
                t0 = time.time()
                w = threading.Thread(target=write)
                w.start()
                self.assertEqual(asker.get(theirs[1]), ("v-" + theirs[1]).encode())
                w.join(20)
                writer.close()
                self.assertIsInstance(outcome.get("write"), MemcacheServerError)
                self.assertLess(time.time() - t0, 8)
                self.assertEqual(asker.get(mine[0]), ("v-" + mine[0]).encode())
            finally:
                stopped.proc.send_signal(signal.SIGCONT)
            self.assertGreater(c.members[0].info()["cluster_forward_timeouts"], 0)
            self.assertGreater(c.members[0].info()["cluster_forward_rerouted"], 0)
            c.wait_for_leaders()
            # A partition without a leader: the forward waits for one instead of failing at once. With
            # both other members paused the asker's groups lose their leaders; a get sent then is
            # answered once they are back and a leader is elected.
            others = c.members[1:]
            key = [k for k in keys[1:] if c.leader_of(k) is not c.members[0]][0]
            for m in others:
                m.proc.send_signal(signal.SIGSTOP)
            try:
                deadline = time.time() + 10
                while time.time() < deadline and c.members[0].info()["cluster_partitions_without_leader"] == 0:
                    time.sleep(0.1)
                self.assertGreater(c.members[0].info()["cluster_partitions_without_leader"], 0)
                result = {}
                waiter = threading.Thread(target=lambda: result.setdefault("v", asker.get(key)))
                waiter.start()
                time.sleep(0.3)
            finally:
                for m in others:
                    m.proc.send_signal(signal.SIGCONT)
            waiter.join(20)
            self.assertEqual(result.get("v"), ("v-" + key).encode())
            c.wait_for_leaders()
            # flush_all through one member empties every partition, whoever leads it.
            self.assertTrue(clients[1].flush_all(noreply=False))
            self.assertEqual(sum(retry_tryagain(m.client().dbsize) for m in c.members), 0)
            for mc in clients:
                self.assertEqual(mc.get_many(keys), {})
                mc.close()

    def test_plain_resp_clients_with_forwarding(self):
        with Cluster(extra=("--cluster-forward-resp", "yes")) as c:
            r = c.members[1].client()
            keys = ["f%d" % i for i in range(100)]
            for k in keys:
                self.assertTrue(r.set(k, "v-" + k))
            self.assertEqual([r.get(k) for k in keys], ["v-" + k for k in keys])
            self.assertEqual(r.incr("{f}counter"), 1)
            # Cluster rules stay: keys of one command share a slot.
            with self.assertRaisesRegex(redis.ResponseError, "CROSSSLOT"):
                r.mget(keys[:5])
            self.assertEqual(r.mget(["{t}a", "{t}b"]), [None, None])
            wait_converged(c)
            # Keyless commands cover the whole cluster for a client that cannot ask every node.
            self.assertEqual(retry_tryagain(r.dbsize), 101)
            self.assertEqual(len(retry_tryagain(lambda: r.keys("f*"))), 100)
            self.assertTrue(retry_tryagain(r.flushall))
            self.assertEqual(sum(retry_tryagain(m.client().dbsize) for m in c.members if m is not c.members[1]), 0)
            self.assertEqual(retry_tryagain(r.dbsize), 0)


class ClusterPubSubTest(unittest.TestCase):
    def test_publish_reaches_every_members_subscribers(self):
        from harness import Raw, resp
        with Cluster() as c:
            a, b, m3 = c.members
            sub = Raw(a.port)
            sub.send(resp("SUBSCRIBE", "news"))
            sub.read_until(b":1\r\n")
            psub = Raw(m3.port)
            psub.send(resp("PSUBSCRIBE", "ne*"))
            psub.read_until(b":1\r\n")
            # The reply counts the receivers on the member that got PUBLISH, as in Redis Cluster.
            self.assertEqual(b.client().publish("news", "hello"), 0)
            self.assertEqual(a.client().publish("news", "local"), 1)
            self.assertIn(b"hello", sub.read_until(b"hello\r\n"))
            self.assertIn(b"local", sub.read_until(b"local\r\n"))
            got = psub.read_until(b"local\r\n")
            self.assertIn(b"hello", got)
            self.assertIn(b"pmessage", got)
            # PUBSUB counts this member's own subscribers only.
            self.assertEqual(b.client().execute_command("PUBSUB", "NUMSUB", "news"), ["news", 0])
            sub.close()
            psub.close()


class ChangeStreamFailoverTest(unittest.TestCase):
    """The change stream on a 3-member cluster: a consumer group tails one partition's stream through
    its leader, the leader is killed, and the group carries on at the new leader. Every write appears
    once, in commit order, with ids that only grow; what the group read and acknowledged before the
    failover is not delivered again."""

    def test_a_consumer_group_carries_on_across_a_failover(self):
        from redis.crc import key_slot
        with Cluster(extra=("--change-stream", "yes")) as c:
            rows = c.members[0].client().execute_command("TALLY", "CHANGES")
            slot = key_slot(b"{d}")
            stream = next(r[1] for r in rows if r[2] <= slot <= r[3])
            written, consumed = [], []

            def write(n, prefix):
                for i in range(n):
                    key = "{d}%s%d" % (prefix, i)
                    self.assertTrue(c.call("SET", key, str(i), key=key))
                    written.append(key)

            def consume(count):
                got = 0
                while True:
                    res = c.call("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", stream, ">", key=stream)
                    if not res:
                        return got
                    entries = res[0][1]
                    for eid, fields in entries:
                        f = fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2]))
                        consumed.append((eid, f["key"], int(f["index"])))
                    c.call("XACK", stream, "g", *[eid for eid, _ in entries], key=stream)
                    got += len(entries)
                    if got >= count:
                        return got

            write(1, "first")
            self.assertEqual(c.call("XGROUP", "CREATE", stream, "g", "0", key=stream), "OK")
            write(30, "a")
            consume(20)
            victim = c.leader_of(stream)
            self.assertIsNotNone(victim)
            victim.kill()
            c.wait_for_leaders(members=c.alive())
            write(30, "b")
            consume(10 ** 6)
            self.assertEqual([k for _, k, _ in consumed], written)  # each once, in commit order
            ids = [tuple(int(x) for x in eid.split("-")) for eid, _, _ in consumed]
            self.assertEqual(ids, sorted(set(ids)))
            self.assertEqual([index for _, _, index in consumed], [ms for ms, _ in ids])
            pending = c.call("XPENDING", stream, "g", key=stream)
            self.assertEqual(pending["pending"] if isinstance(pending, dict) else pending[0], 0)
            victim.start()  # back as a follower: it catches up, the stream is the same everywhere
            c.wait_for_leaders()
            wait_converged(c)


class TlsClusterTest(unittest.TestCase):
    """Members that speak mutual TLS on the peer port (--tls-cluster yes): the cluster forms, replicates
    and converges through it; plaintext and certificates the CA did not sign are refused there."""

    def test_a_cluster_over_mutual_tls(self):
        import shutil
        import ssl
        import tempfile
        from tls_certs import make_certs
        certs = make_certs(tempfile.mkdtemp(prefix="tally-cluster-tls-"))
        pem = lambda name: os.path.join(certs, name)
        try:
            extra = ("--tls-cluster", "yes", "--tls-cert-file", pem("server.crt"), "--tls-key-file",
                     pem("server.key"), "--tls-ca-cert-file", pem("ca.crt"))
            with Cluster(extra=extra) as c:
                for i in range(200):
                    self.assertTrue(c.call("SET", "k%d" % i, str(i), key="k%d" % i))
                wait_converged(c)
                self.assertGreater(sum(m.info()["cluster_raft_messages_in"] for m in c.members), 0)
                a = c.members[0]
                # Plaintext on the peer port: the TLS handshake fails and the connection closes.
                with socket.create_connection(("127.0.0.1", a.peer_port), timeout=5) as s:
                    s.sendall(b"\x00GARBAGE" * 100)
                    s.settimeout(5)
                    try:
                        while s.recv(4096):
                            pass
                    except ConnectionResetError:
                        pass
                # With the CA's certificate the member waits for the cluster secret's hello; with no
                # certificate, or one from another CA, it refuses the TLS handshake.
                def outcome(who):
                    ctx = ssl.create_default_context(cafile=pem("ca.crt"))
                    ctx.check_hostname = False
                    if who:
                        ctx.load_cert_chain(pem(who + ".crt"), pem(who + ".key"))
                    with socket.create_connection(("127.0.0.1", a.peer_port), timeout=5) as raw:
                        try:
                            with ctx.wrap_socket(raw) as t:
                                t.settimeout(2)
                                return "refused" if t.recv(4096) == b"" else "answered"
                        except socket.timeout:
                            return "open"
                        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                            return "refused"
                self.assertEqual(outcome("client"), "open")
                self.assertEqual(outcome(None), "refused")
                self.assertEqual(outcome("stranger"), "refused")
                self.assertTrue(c.call("SET", "after", "1", key="after"))
                self.assertEqual(c.call("GET", "k7", key="k7"), "7")
        finally:
            shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
