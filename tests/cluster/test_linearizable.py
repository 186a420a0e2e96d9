"""Linearizability of a real cluster under faults: clients record every operation (call and return
times, outcome) in the simulator's history format while leaders are killed, paused and restarted,
and the project's checker (tally-sim --check-history, docs/history-format.md) checks the history."""
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import redis

from cluster_harness import Cluster

TALLYSIM = os.environ.get("TALLYSIM", "build/tests/sim/tally-sim")
KEYS = ["h%d" % i for i in range(4)]


class Recorder:
    def __init__(self, cluster, keys):
        self.c = cluster
        self.keys = keys  # fresh keys per history: every register starts absent
        self.ops = []
        self.lock = threading.Lock()
        self.next_value = 1

    def value(self):
        with self.lock:
            self.next_value += 1
            return self.next_value

    def run(self, client_id, stop):
        rng = random.Random(client_id)
        conns = {}

        def conn(m):
            if m.port not in conns:
                conns[m.port] = redis.Redis(port=m.port, socket_timeout=4.0, socket_connect_timeout=1.0,
                                            decode_responses=True)
            return conns[m.port]

        while not stop.is_set():
            key = rng.choice(self.keys)
            kind = rng.choices(["read", "write", "incr"], [4, 4, 2])[0]
            arg = self.value() if kind == "write" else (rng.randint(1, 5) if kind == "incr" else None)
            cmd = {"read": ("GET", key), "write": ("SET", key, str(arg)), "incr": ("INCRBY", key, str(arg))}[kind]
            call = time.monotonic_ns()
            outcome, result = "fail", None
            live = self.c.alive()
            m = live[rng.randrange(len(live))]
            deadline = time.time() + 6
            while time.time() < deadline:
                try:
                    reply = conn(m).execute_command(*cmd)
                    outcome = "ok"
                    result = None if kind == "write" else (None if reply is None else int(reply))
                    break
                except redis.ResponseError as e:
                    text = str(e)
                    if text.startswith("MOVED"):
                        nxt = self.c.by_port(int(text.rsplit(":", 1)[1]))
                        m = nxt if nxt is not None and nxt.proc is not None else m
                    elif "outcome is unknown" in text or "outcome of this write is unknown" in text:
                        outcome = "unknown"
                        break
                    elif not text.startswith("TRYAGAIN"):
                        raise
                    time.sleep(0.01)  # refused before it entered any log: try again
                except (redis.ConnectionError, redis.TimeoutError) as e:
                    conns.pop(m.port, None)
                    if "Error 111" in str(e) or "Connection refused" in str(e):
                        live = self.c.alive()
                        m = live[rng.randrange(len(live))]
                        time.sleep(0.01)
                        continue  # never sent
                    outcome = "unknown"  # sent, no answer: it may have taken effect
                    break
            ret = time.monotonic_ns()
            with self.lock:
                self.ops.append({"client": client_id, "key": key, "op": kind, "arg": arg, "expect": None,
                                 "result": result, "call": call, "return": ret, "outcome": outcome})

    def write(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, separators=(",", ":")) + "\n")


class LinearizableTest(unittest.TestCase):
    def test_histories_under_kills_and_pauses_are_linearizable(self):
        rounds = int(os.environ.get("CHAOS_ROUNDS", "2"))
        with Cluster() as c:
            for rnd in range(rounds):
                keys = ["r%d.%s" % (rnd, k) for k in KEYS]
                rec = Recorder(c, keys)
                stop = threading.Event()
                threads = [threading.Thread(target=rec.run, args=(i, stop)) for i in range(4)]
                for t in threads:
                    t.start()
                time.sleep(1.0)
                victim = c.leader_of(keys[rnd % len(keys)])
                if rnd % 2 == 0:
                    victim.kill()
                    time.sleep(1.5)
                    victim.start()
                else:
                    # Reads sent to the paused node wait in its socket (the clients' timeout is longer than the
                    # pause) and are answered after it resumes: a deposed leader must not answer them from
                    # its old state.
                    victim.proc.send_signal(signal.SIGSTOP)
                    time.sleep(1.5)
                    victim.proc.send_signal(signal.SIGCONT)
                c.wait_for_leaders()
                time.sleep(1.0)
                stop.set()
                for t in threads:
                    t.join()
                ok = sum(1 for op in rec.ops if op["outcome"] == "ok")
                unknown = sum(1 for op in rec.ops if op["outcome"] == "unknown")
                self.assertGreater(ok, 100)
                fd, path = tempfile.mkstemp(prefix="tally-history-", suffix=".jsonl")
                os.close(fd)
                rec.write(path)
                out = subprocess.run([TALLYSIM, "--check-history", path], capture_output=True, text=True, timeout=300)
                print("round %d (%s): %d operations, %d ok, %d unknown: %s" %
                      (rnd, "kill -9" if rnd % 2 == 0 else "SIGSTOP", len(rec.ops), ok, unknown, out.stdout.strip()))
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr + "\nhistory kept in " + path)
                os.unlink(path)


if __name__ == "__main__":
    unittest.main()
