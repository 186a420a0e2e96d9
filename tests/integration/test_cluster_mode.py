"""Cluster mode on one node (--cluster-enabled yes): the Redis Cluster commands, Redis Cluster's key
rules for RESP clients, and the cluster clients and tools people use (redis-py's RedisCluster,
redis-cli -c, redis-cli --cluster check) working unchanged."""
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import redis
from redis.cluster import RedisCluster

from harness import Tallyd


def cluster_node(*extra, threads=2):
    return Tallyd("--cluster-enabled", "yes", *extra, threads=threads)


class ClusterCommandsTest(unittest.TestCase):
    def test_the_node_serves_every_slot_and_says_so_in_every_format(self):
        with cluster_node("--partitions", "64") as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            myid = r.execute_command("CLUSTER", "MYID")
            self.assertRegex(myid, r"^[0-9a-f]{40}$")
            info = r.execute_command("CLUSTER", "INFO")
            self.assertIn("cluster_state:ok\r\n", info)
            self.assertIn("cluster_slots_assigned:16384\r\n", info)
            self.assertIn("cluster_known_nodes:1\r\n", info)
            nodes = r.execute_command("CLUSTER", "NODES").strip().split("\n")
            self.assertEqual(len(nodes), 1)
            fields = nodes[0].split(" ")
            self.assertEqual(fields[0], myid)
            bus = srv.port + 10000 if srv.port <= 55535 else 0  # Redis's rule; 0 past the last port
            self.assertEqual(fields[1], "127.0.0.1:%d@%d" % (srv.port, bus))
            self.assertEqual(fields[2], "myself,master")
            self.assertEqual(fields[3], "-")
            self.assertEqual(fields[7], "connected")
            self.assertEqual(fields[8:], ["0-16383"])
            slots = r.execute_command("CLUSTER", "SLOTS")
            self.assertEqual(len(slots), 1)
            self.assertEqual(slots[0][0], 0)
            self.assertEqual(slots[0][1], 16383)
            self.assertEqual(slots[0][2][:3], ["127.0.0.1", srv.port, myid])
            shards = r.execute_command("CLUSTER", "SHARDS")
            self.assertEqual(len(shards), 1)
            shard = dict(zip(shards[0][::2], shards[0][1::2]))
            self.assertEqual(shard["slots"], [0, 16383])
            node = dict(zip(shard["nodes"][0][::2], shard["nodes"][0][1::2]))
            self.assertEqual((node["id"], node["port"], node["role"]), (myid, srv.port, "master"))
            self.assertEqual(r.info("cluster")["cluster_enabled"], 1)

    def test_keyslot_matches_redis_cluster(self):
        with cluster_node() as srv:
            r = redis.Redis(port=srv.port)
            # Values from Redis Cluster's specification and from redis-server 7 itself.
            for key, slot in [("foo", 12182), ("bar", 5061), ("hello", 866), ("somekey", 11058),
                              ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
                              ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061)]:
                self.assertEqual(r.execute_command("CLUSTER", "KEYSLOT", key), slot, key)

    def test_keys_in_a_slot_are_counted_and_listed_on_any_shard(self):
        with cluster_node("--partitions", "16") as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            tagged = ["{t}%d" % i for i in range(30)]
            for k in tagged:
                r.set(k, "v")
            r.set("other", "v")
            slot = r.execute_command("CLUSTER", "KEYSLOT", "{t}")
            self.assertEqual(r.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot), 30)
            got = r.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10)
            self.assertEqual(len(got), 10)
            self.assertTrue(set(got) <= set(tagged))
            self.assertEqual(sorted(r.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)), sorted(tagged))
            empty = (slot + 1) % 16384
            if empty == r.execute_command("CLUSTER", "KEYSLOT", "other"):
                empty = (slot + 2) % 16384
            self.assertEqual(r.execute_command("CLUSTER", "COUNTKEYSINSLOT", empty), 0)
            for bad in ("16384", "-1", "x"):
                with self.assertRaisesRegex(redis.ResponseError, "Invalid or out of range slot"):
                    r.execute_command("CLUSTER", "COUNTKEYSINSLOT", bad)
            with self.assertRaisesRegex(redis.ResponseError, "Invalid slot or number of keys"):
                r.execute_command("CLUSTER", "GETKEYSINSLOT", slot, -1)
            with self.assertRaisesRegex(redis.ResponseError, "Try CLUSTER HELP"):
                r.execute_command("CLUSTER", "NOSUCH")

    def test_the_node_id_is_kept_in_the_data_directory(self):
        d1 = tempfile.mkdtemp(prefix="tally-cluster-")
        d2 = tempfile.mkdtemp(prefix="tally-cluster-")
        try:
            ids = []
            for d in (d1, d1, d2):
                with cluster_node("--dir", d) as srv:
                    ids.append(redis.Redis(port=srv.port, decode_responses=True).execute_command("CLUSTER", "MYID"))
            self.assertEqual(ids[0], ids[1])
            self.assertNotEqual(ids[0], ids[2])
            with open(d1 + "/NODE") as f:
                self.assertIn("id = " + ids[0], f.read())
        finally:
            shutil.rmtree(d1)
            shutil.rmtree(d2)


class ClusterRulesTest(unittest.TestCase):
    def test_multi_key_commands_must_stay_in_one_slot(self):
        with cluster_node(threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            for cmd in (("MSET", "a", "1", "b", "2"), ("MGET", "a", "b"), ("DEL", "a", "b"),
                        ("RENAME", "a", "b"), ("SINTERCARD", "2", "a", "b"), ("EXISTS", "a", "b")):
                with self.assertRaisesRegex(redis.ResponseError, "^CROSSSLOT", msg=cmd):
                    r.execute_command(*cmd)
            self.assertTrue(r.mset({"{u}a": "1", "{u}b": "2"}))
            self.assertEqual(r.mget("{u}a", "{u}b"), ["1", "2"])
            self.assertEqual(r.execute_command("SINTERCARD", "2", "{u}s", "{u}t"), 0)
            self.assertEqual(r.delete("{u}a", "{u}b"), 2)
            # A keyed command with no keys in this request is answered by its handler, as before.
            with self.assertRaisesRegex(redis.ResponseError, "numkeys"):
                r.execute_command("SINTERCARD", "0", "x")

    def test_memcached_clients_are_not_held_to_slots(self):
        with cluster_node() as srv:
            with socket.create_connection(("127.0.0.1", srv.mc_port), timeout=5) as s:
                s.sendall(b"set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\nget a b\r\n")
                data = b""
                while not data.endswith(b"END\r\n"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk)
                    data += chunk
            self.assertEqual(data, b"STORED\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")

    def test_without_cluster_mode_the_cluster_commands_are_refused(self):
        with Tallyd(threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            for cmd in (("CLUSTER", "INFO"), ("CLUSTER", "SLOTS"), ("READONLY",), ("ASKING",)):
                with self.assertRaisesRegex(redis.ResponseError, "cluster support disabled"):
                    r.execute_command(*cmd)
            self.assertEqual(r.info("cluster")["cluster_enabled"], 0)
            self.assertTrue(r.mset({"a": "1", "b": "2"}))  # no slot rule outside cluster mode


class ClusterClientsTest(unittest.TestCase):
    def test_redis_py_cluster_client(self):
        with cluster_node("--partitions", "32") as srv:
            rc = RedisCluster(host="127.0.0.1", port=srv.port, decode_responses=True)
            self.assertTrue(rc.set("a", "1"))
            self.assertEqual(rc.get("a"), "1")
            keys = {"k%d" % i: str(i) for i in range(200)}
            rc.mset_nonatomic(keys)
            self.assertEqual(rc.mget_nonatomic(list(keys)), list(keys.values()))
            pipe = rc.pipeline()
            for k in keys:
                pipe.incr(k)
            self.assertEqual(pipe.execute(), [int(v) + 1 for v in keys.values()])
            self.assertEqual(rc.delete(*keys), 200)
            self.assertEqual(rc.sintercard(2, ["{s}a", "{s}b"]), 0)
            self.assertEqual(rc.cluster_info()["cluster_state"], "ok")
            self.assertEqual(rc.keyslot("foo"), 12182)
            rc.close()

    def test_redis_cli_follows_the_cluster(self):
        with cluster_node() as srv:
            out = subprocess.run(["redis-cli", "-c", "-p", str(srv.port), "SET", "k", "v"],
                                 capture_output=True, text=True, timeout=20)
            self.assertEqual(out.stdout.strip(), "OK")
            check = subprocess.run(["redis-cli", "--cluster", "check", "127.0.0.1:%d" % srv.port],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            text = re.sub(r"\x1b\[[0-9;]*m", "", check.stdout)
            self.assertIn("[OK] All nodes agree about slots configuration.", text)
            self.assertIn("[OK] All 16384 slots covered.", text)


if __name__ == "__main__":
    unittest.main()
