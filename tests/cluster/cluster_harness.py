"""A cluster of real tallyd members on free loopback ports, formed with tallyctl, for cluster tests.

Clients here follow -MOVED themselves and retry -TRYAGAIN and dead nodes, so a test can tell what the
cluster acknowledged from what it refused.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import redis

from harness import TALLYD, Tallyd, free_port

TALLYCTL = os.environ.get("TALLYCTL", "build/host/server/tallyctl")


class Member(Tallyd):
    def __init__(self, cluster, i, port, peer_port, secret, own=()):
        super().__init__(threads=cluster.threads, memcached=False)
        self.port = port
        self.peer_port = peer_port
        self.dir = os.path.join(cluster.parent, "node-%d" % i)
        self.args = [TALLYD, "--port", str(port), "--peer-port", str(peer_port), "--memcached-port", "0",
                     "--admin-port", "0", "--threads", str(cluster.threads), "--cluster-enabled", "yes",
                     "--cluster-secret-file", secret, "--dir", self.dir] + list(cluster.extra) + list(own)

    def start(self):
        # A member restarts after stop(), which removed its log: each run gets a fresh one.
        if not os.path.exists(self.log.name):
            self.log = tempfile.NamedTemporaryFile(prefix="tallyd-", suffix=".log", delete=False)
        super().start()

    def client(self, timeout=2):
        return redis.Redis(port=self.port, socket_timeout=timeout, decode_responses=True)

    def info(self):
        return self.client().info("cluster")

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None


class Cluster:
    def __init__(self, n=3, threads=1, extra=(), member_extra=None, replicas=None):
        """member_extra: a tuple of flags per member (e.g. its --zone); replicas: tallyctl's --replicas."""
        self.n = n
        self.replicas = replicas
        self.threads = threads
        self.extra = extra
        self.parent = tempfile.mkdtemp(prefix="tally-cluster-test-")
        self.secret = os.path.join(self.parent, "secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(24).hex())
        self.members = []
        for i in range(1, n + 1):
            own = member_extra[i - 1] if member_extra else ()
            self.members.append(Member(self, i, free_port(), free_port(), self.secret, own))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for m in self.members:
            m.start()
        replicas = ["--replicas", str(self.replicas)] if self.replicas else []
        out = subprocess.run([TALLYCTL, "cluster", "create"] + ["127.0.0.1:%d" % m.port for m in self.members] + replicas,
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("tallyctl cluster create failed:\n" + out.stdout + out.stderr)
        self.wait_for_leaders()

    def stop(self):
        errors = []
        for m in self.members:
            if m.proc is not None:
                try:
                    m.stop()
                except AssertionError as e:
                    errors.append(str(e))
        shutil.rmtree(self.parent, ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))

    def alive(self):
        return [m for m in self.members if m.proc is not None and m.proc.poll() is None]

    def wait_for_leaders(self, timeout=20, members=None):
        """Until every partition has a leader that every live member (or `members`) knows."""
        deadline = time.time() + timeout
        members = members or self.alive()
        while time.time() < deadline:
            try:
                if all(m.info().get("cluster_partitions_without_leader") == 0 for m in members):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError("partitions without a leader after %s s" % timeout)

    def by_port(self, port):
        for m in self.members:
            if m.port == port:
                return m
        return None

    def leader_of(self, key):
        """The member leading key's partition, as a live member says (None if unknown)."""
        for m in self.alive():
            try:
                r = m.client()
                slot = r.execute_command("CLUSTER", "KEYSLOT", key)
                for first, last, master, *rest in r.execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last:
                        return self.by_port(master[1])
            except redis.RedisError:
                continue
        return None

    def call(self, *args, key, deadline_s=10, start=None):
        """Runs a command on key's leader, following MOVED and retrying TRYAGAIN and dead nodes until
        `deadline_s`. Returns the reply; raises the last error when the deadline passes."""
        deadline = time.time() + deadline_s
        m = start or self.alive()[0]
        last = None
        while time.time() < deadline:
            try:
                return m.client().execute_command(*args)
            except redis.ResponseError as e:
                last = e
                text = str(e)
                if text.startswith("MOVED"):
                    port = int(text.rsplit(":", 1)[1])
                    nxt = self.by_port(port)
                    if nxt is not None and nxt.proc is not None:
                        m = nxt
                        continue
                    live = self.alive()
                    m = live[(live.index(m) + 1) % len(live)] if m in live else live[0]
                elif not text.startswith("TRYAGAIN"):
                    raise
            except (redis.ConnectionError, redis.TimeoutError) as e:
                # A dead or paused node: try the next one.
                last = e
                live = self.alive()
                m = live[(live.index(m) + 1) % len(live)] if m in live else live[0]
            time.sleep(0.02)
        raise last
