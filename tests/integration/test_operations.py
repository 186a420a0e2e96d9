"""Operating tallyd: config file and flags, both reactor backends, tallyctl, the metrics endpoint,
maxmemory, protected mode and clean shutdown."""
import os
import subprocess
import tempfile
import time
import unittest
import urllib.request

import redis

from harness import TALLYD, Raw, Tallyd, free_port, resp

TALLYCTL = os.environ.get("TALLYCTL", "build/host/server/tallyctl")


class ConfigTest(unittest.TestCase):
    def run_tallyd(self, *args):
        return subprocess.run([TALLYD] + list(args), capture_output=True, text=True, timeout=20)

    def test_unknown_config_key_is_an_error_naming_it(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('port = %d\nmaxmemroy = "1mb"\n' % free_port())
        out = self.run_tallyd("--config", f.name)
        os.unlink(f.name)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("unknown config key 'maxmemroy'", out.stderr)

    def test_bad_flags(self):
        self.assertIn("unknown option", self.run_tallyd("--no-such-flag", "1").stderr)
        self.assertIn("io must be", self.run_tallyd("--io", "select").stderr)
        self.assertIn("unknown maxmemory", self.run_tallyd("--maxmemory-policy", "lru").stderr)

    def test_config_file_and_override(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('maxmemory = "10mb"\nmaxmemory_policy = "allkeys-lru"\nhz = 20\n')
        with Tallyd("--config", f.name, "--hz", "50", threads=1) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            self.assertEqual(r.config_get("maxmemory")["maxmemory"], str(10 << 20))
            self.assertEqual(r.config_get("maxmemory-policy")["maxmemory-policy"], "allkeys-lru")
            self.assertEqual(r.config_get("hz")["hz"], "50")
        os.unlink(f.name)

    def test_example_config_loads(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with Tallyd("--config", os.path.join(root, "appliance", "tallyd.toml"), threads=1) as srv:
            self.assertTrue(redis.Redis(port=srv.port).ping())


def port_free(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class SeveralInstancesTest(unittest.TestCase):
    def test_two_instances_on_one_host_need_only_their_ports(self):
        # Find P such that both instances' client, memcached (P+4832) and admin (P+2742) ports are free.
        import random
        for _ in range(200):
            base = random.randrange(20000, 40000)
            if all(port_free(base + i + off) for i in (0, 1) for off in (0, 4832, 2742)):
                break
        else:
            self.skipTest("no free block of ports")
        servers = []
        try:
            for i in (0, 1):
                srv = Tallyd(threads=1)
                srv.port = base + i
                srv.args = [TALLYD, "--port", str(srv.port), "--threads", "1"]
                srv.start()
                servers.append(srv)
            for i, srv in enumerate(servers):
                r = redis.Redis(port=srv.port, decode_responses=True)
                r.set("who", str(i))
                info = r.info("server")
                self.assertEqual(info["memcached_port"], base + i + 4832)
                self.assertEqual(r.config_get("admin-port")["admin-port"], str(base + i + 2742))
                metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % (base + i + 2742), timeout=5).read()
                self.assertIn(b"tally_command_calls_total", metrics)
                mc = Raw(base + i + 4832)
                mc.send(b"get who\r\n")
                self.assertEqual(mc.read_until(b"END\r\n"), b"VALUE who 0 1\r\n%d\r\nEND\r\n" % i)
                mc.close()
            # An admin port someone else holds stops the start with the address and the reason.
            clash = Tallyd(threads=1)
            clash.args = [TALLYD, "--port", str(clash.port), "--memcached-port", "0", "--admin-port",
                          str(base + 2742), "--threads", "1"]
            with self.assertRaises(RuntimeError) as ctx:
                clash.start()
            self.assertIn("127.0.0.1:%d" % (base + 2742), str(ctx.exception))
            self.assertIn("in use", str(ctx.exception))
        finally:
            for srv in servers:
                srv.stop()


class BackendTest(unittest.TestCase):
    def check(self, io):
        with Tallyd("--io", io, threads=2, admin=True) as srv:
            r = redis.Redis(port=srv.port, decode_responses=True)
            r.mset({"a%d" % i: i for i in range(100)})
            self.assertEqual(r.mget(["a1", "a99"]), ["1", "99"])
            info = r.info("server")
            self.assertEqual(info["multiplexing_api"], {"epoll": "epoll", "uring": "io_uring"}[io])
            metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.admin_port, timeout=5).read()
            text = metrics.decode()
            self.assertIn('tally_reactor_backend{backend="%s"} 1' % info["multiplexing_api"], text)
            self.assertIn('tally_command_calls_total{cmd="mset"} 1', text)
            self.assertIn('tally_command_duration_seconds_bucket{cmd="mget",le="+Inf"} 1', text)

    def test_epoll(self):
        self.check("epoll")

    def test_io_uring(self):
        self.check("uring")


class TallyctlTest(unittest.TestCase):
    def test_commands(self):
        with Tallyd(threads=1, admin=True) as srv:
            def ctl(*args):
                return subprocess.run([TALLYCTL, "-p", str(srv.port), "--admin-port", str(srv.admin_port)] +
                                      list(args), capture_output=True, text=True, timeout=20)
            self.assertEqual(ctl("ping").stdout.strip(), "PONG")
            self.assertIn("redis_version", ctl("info", "server").stdout)
            out = ctl("config", "get", "maxmemory*")
            self.assertIn("maxmemory-policy", out.stdout)
            self.assertEqual(ctl("config", "set", "maxmemory", "5mb").returncode, 0)
            self.assertIn(str(5 << 20), ctl("config", "get", "maxmemory").stdout)
            self.assertIn("tally_connected_clients", ctl("metrics").stdout)
            self.assertEqual(ctl("bogus").returncode, 2)


class MemoryLimitTest(unittest.TestCase):
    def test_noeviction_refuses_writes_with_oom(self):
        with Tallyd("--maxmemory", "2mb", "--maxmemory-policy", "noeviction", threads=1) as srv:
            r = redis.Redis(port=srv.port)
            with self.assertRaises(redis.ResponseError) as cm:
                for i in range(100000):
                    r.set("k%d" % i, "x" * 100)
            self.assertIn("OOM command not allowed", str(cm.exception))
            self.assertTrue(r.get("k0"))  # what was stored stays readable
            self.assertTrue(r.delete("k0"))

    def test_allkeys_lru_evicts(self):
        with Tallyd("--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru", threads=2) as srv:
            r = redis.Redis(port=srv.port)
            p = r.pipeline(transaction=False)
            for i in range(50000):
                p.set("k%d" % i, "x" * 100)
            p.execute()
            info = r.info()
            self.assertGreater(info["evicted_keys"], 0)
            self.assertLessEqual(info["used_memory"], 2 * (1 << 20) + 4096)


class IdleTimeoutTest(unittest.TestCase):
    def test_idle_client_is_closed(self):
        with Tallyd("--timeout", "1", threads=1) as srv:
            idle = Raw(srv.port)
            busy = Raw(srv.port)
            for _ in range(8):
                busy.send(resp("PING"))
                busy.read_until(b"\r\n")
                time.sleep(0.25)
            self.assertTrue(idle.closed_by_peer(timeout=5))
            busy.send(resp("PING"))
            self.assertEqual(busy.read_until(b"\r\n"), b"+PONG\r\n")


class LifecycleTest(unittest.TestCase):
    def test_shutdown_command_stops_cleanly(self):
        srv = Tallyd(threads=2)
        srv.start()
        clients = [Raw(srv.port) for _ in range(5)]
        c = Raw(srv.port)
        c.send(resp("SHUTDOWN"))
        self.assertTrue(c.closed_by_peer(timeout=10))
        srv.proc.wait(timeout=20)
        self.assertEqual(srv.proc.returncode, 0)
        for x in clients:
            self.assertTrue(x.closed_by_peer(timeout=5))
        srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
