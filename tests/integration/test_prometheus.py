"""Monitoring tested for real: promtool checks tallyd's /metrics, and Debian's Prometheus scrapes a
running tallyd; its HTTP API then shows the target up and a command counter that moved."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import redis

from harness import Tallyd, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
DEADLINE_S = 60


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


class PrometheusTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # scripts/install-deps.sh installs Debian's prometheus (promtool comes with it).
        if not (os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK)):
            raise unittest.SkipTest("prometheus is not installed (make deps)")

    def setUp(self):
        self.server = Tallyd(threads=2, admin=True)
        self.server.start()
        self.r = redis.Redis(port=self.server.port)
        self.metrics_url = "http://127.0.0.1:%d/metrics" % self.server.admin_port

    def tearDown(self):
        self.server.stop()

    def test_promtool_accepts_the_metrics(self):
        for i in range(50):
            self.r.set("k%d" % i, i)
        self.r.get("k1")
        with self.assertRaises(redis.ResponseError):
            self.r.incr("nope", "x")  # an error, so tally_command_errors_total has a nonzero row
        body = http_get(self.metrics_url)
        self.assertIn(b"tally_command_errors_total", body)
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())
        self.assertEqual(check.stdout.strip() + check.stderr.strip(), b"", "promtool has remarks")

    def test_prometheus_scrapes_a_counter_that_moves(self):
        work = tempfile.mkdtemp(prefix="tally-prom-")
        port = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                    "scrape_configs:\n  - job_name: tally\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % self.server.admin_port)
        log = open(os.path.join(work, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + config, "--storage.tsdb.path=" + work + "/data",
                                 "--web.listen-address=127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT)
        api = "http://127.0.0.1:%d/api/v1/query?query=" % port

        def query(expr):
            try:
                out = json.loads(http_get(api + urllib.parse.quote(expr)))
            except OSError:
                return None
            result = out.get("data", {}).get("result", [])
            return float(result[0]["value"][1]) if result else None

        def wait_for(pred, what):
            deadline = time.time() + DEADLINE_S
            while time.time() < deadline:
                self.assertIsNone(prom.poll(), "prometheus exited")
                v = pred()
                if v is not None:
                    return v
                time.sleep(0.5)
            log.flush()
            with open(log.name, "rb") as f:
                self.fail("no %s within %ds; prometheus said:\n%s" % (what, DEADLINE_S, f.read()[-3000:].decode()))

        try:
            for i in range(10):
                self.r.set("a%d" % i, i)
            self.assertEqual(wait_for(lambda: query('up{job="tally"}'), "target up"), 1.0)
            first = wait_for(lambda: query('tally_command_calls_total{cmd="set"}'), "set counter")
            self.assertGreaterEqual(first, 10)
            for i in range(500):
                self.r.set("b%d" % i, i)
            moved = wait_for(lambda: (lambda v: v if v is not None and v >= first + 500 else None)(
                query('tally_command_calls_total{cmd="set"}')), "counter move")
            self.assertGreaterEqual(moved, first + 500)
            # A query over the scraped series, as a dashboard would ask it.
            rate = wait_for(lambda: query('sum(increase(tally_command_calls_total{cmd="set"}[1m]))'), "increase")
            self.assertGreater(rate, 0)
            # Every query of the Grafana dashboard is valid PromQL over metrics tallyd exports.
            exported = set(re.findall(rb"^# HELP (tally_\w+)", http_get(self.metrics_url), re.M))
            # Series that appear only on cluster members (peers, Raft) or once an offload batch ran.
            with open(os.path.join(ROOT, "host/server/admin_http.cc"), "rb") as f:
                exported |= set(re.findall(rb'"(tally_(?:peer|raft|offload)_\w+)"', f.read()))
            with open(os.path.join(ROOT, "appliance/grafana/tally-dashboard.json")) as f:
                dash = json.load(f)
            exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
            self.assertGreaterEqual(len(exprs), 10)
            for expr in exprs:
                for name in re.findall(r"\b(tally_\w+)", expr):
                    base = re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith("tally_command_duration") else name
                    self.assertIn(base.encode(), exported, "%s in %s" % (name, expr))
                q = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
                out = json.loads(http_get(api + urllib.parse.quote(q)))
                self.assertEqual(out.get("status"), "success", (expr, out))
        finally:
            prom.terminate()
            try:
                prom.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
