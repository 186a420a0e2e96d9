"""The GPU image's recipe (Dockerfile.cuda) checked without a container runtime: its two stages name the
same CUDA version and distribution, the package lists it asks install-deps.sh for exist for that
distribution, the files and targets it uses exist, it keeps protected mode on, and its runtime staging
(scripts/stage-runtime.sh) yields binaries that run from the staged folder alone."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import TALLYD, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dockerfile():
    with open(os.path.join(ROOT, "Dockerfile.cuda")) as f:
        text = f.read().replace("\\\n", " ")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    expand = lambda s: re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], s)
    lines = [expand(l.strip()) for l in text.splitlines() if l.strip() and not l.startswith("#")]
    return text, args, lines


def deps(*args):
    return subprocess.run([os.path.join(ROOT, "scripts/install-deps.sh"), "--dry-run", *args],
                          capture_output=True, text=True, timeout=30)


class DockerfileTest(unittest.TestCase):
    def test_stages_match_and_use_what_exists(self):
        text, args, lines = dockerfile()
        froms = [l.split()[1] for l in lines if l.startswith("FROM ")]
        self.assertEqual(len(froms), 2, froms)
        build, runtime = froms
        m_build = re.fullmatch(r"nvidia/cuda:([\d.]+)-devel-ubuntu([\d.]+)", build)
        m_run = re.fullmatch(r"nvidia/cuda:([\d.]+)-runtime-ubuntu([\d.]+)", runtime)
        self.assertIsNotNone(m_build, build)
        self.assertIsNotNone(m_run, runtime)
        self.assertEqual(m_build.groups(), m_run.groups(), "the runtime image must match the build image")
        distro = "ubuntu-" + m_build.group(2)
        # The build stage asks install-deps.sh for the image's own distribution, and that list exists.
        runs = " ".join(l for l in lines if l.startswith("RUN "))
        self.assertIn("scripts/install-deps.sh --build-only --distro " + distro, runs)
        listed = deps("--build-only", "--distro", distro)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("liburing-dev", listed.stdout.split())
        # The same call for a distribution it does not know is refused, not guessed.
        self.assertNotEqual(deps("--distro", "fedora-40").returncode, 0)
        # Debian 12 (this machine, CI) and the image's distribution name the clang runtime each their way.
        self.assertIn("libclang-rt-14-dev", deps("--distro", "debian-12").stdout.split())
        self.assertIn("libclang-rt-18-dev", deps("--distro", distro).stdout.split())
        # Files it copies or runs, and the targets it builds.
        for path in re.findall(r"(scripts/[\w.-]+)", runs + text):
            self.assertTrue(os.access(os.path.join(ROOT, path), os.X_OK), path)
        with open(os.path.join(ROOT, "host/server/CMakeLists.txt")) as f:
            cmake = f.read()
        for target in re.search(r"--target ([\w ]+?) &&", runs).group(1).split():
            self.assertIn("add_executable(%s " % target, cmake)
        # The runtime stage takes only the staged folder from the build stage.
        copies = [l for l in lines if l.startswith("COPY --from=")]
        self.assertEqual(copies, ["COPY --from=build /opt/tally /opt/tally"])
        # Listening on every address keeps protected mode on: clients beyond loopback need a password.
        entry = [l for l in lines if l.startswith("ENTRYPOINT")][-1]
        self.assertIn('"0.0.0.0"', entry)
        self.assertNotIn('"--protected-mode", "no"', entry)
        self.assertIn('"--protected-mode", "yes"', entry)

    def test_staged_binaries_run_from_the_staged_folder(self):
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(TALLYD))))
        with tempfile.TemporaryDirectory() as prefix:
            out = subprocess.run([os.path.join(ROOT, "scripts/stage-runtime.sh"), build, prefix],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(sorted(os.listdir(os.path.join(prefix, "bin"))), ["tallyctl", "tallyd"])
            libs = os.listdir(os.path.join(prefix, "lib"))
            self.assertTrue(any(l.startswith("liburing") for l in libs), libs)
            self.assertFalse(any(l.startswith("libc.so") for l in libs), libs)
            env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib"))
            ldd = subprocess.run(["ldd", os.path.join(prefix, "bin", "tallyd")], capture_output=True, text=True,
                                 env=env, timeout=30)
            self.assertNotIn("not found", ldd.stdout)
            for line in ldd.stdout.splitlines():
                if "liburing" in line or "libspdlog" in line:
                    self.assertIn(prefix, line)
            # The staged tallyd serves.
            port = free_port()
            proc = subprocess.Popen([os.path.join(prefix, "bin", "tallyd"), "--port", str(port), "--memcached-port", "0",
                                     "--admin-port", "0", "--threads", "1"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                import redis
                r = redis.Redis(port=port, socket_connect_timeout=1)
                for _ in range(100):
                    try:
                        if r.ping():
                            break
                    except redis.ConnectionError:
                        import time
                        time.sleep(0.05)
                self.assertTrue(r.set("k", "v"))
                self.assertEqual(r.get("k"), b"v")
            finally:
                proc.terminate()
                proc.wait(timeout=10)


class RackExampleTest(unittest.TestCase):
    """appliance/rack: every node's TOML is accepted by tallyd (unknown keys would stop it) and makes a
    password-protected cluster member; only the addresses, ports and paths are overridden here."""

    def test_each_node_config_starts_a_member(self):
        import redis
        import time
        rack = os.path.join(ROOT, "appliance", "rack")
        for name in ("node-1.toml", "node-2.toml", "node-3.toml"):
            with tempfile.TemporaryDirectory() as work:
                secret = os.path.join(work, "cluster.secret")
                with open(secret, "w") as f:
                    f.write("0123456789abcdef0123456789abcdef\n")
                port, peer = free_port(), free_port()
                args = [TALLYD, "--config", os.path.join(rack, name), "--bind", "127.0.0.1", "--port", str(port),
                        "--memcached-port", "0", "--admin-bind", "127.0.0.1", "--admin-port", "0", "--dir", work,
                        "--peer-port", str(peer), "--cluster-secret-file", secret, "--cluster-announce-ip",
                        "127.0.0.1", "--threads", "1", "--maxmemory", "64mb"]
                log = open(os.path.join(work, "log"), "wb")
                proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
                try:
                    r = redis.Redis(port=port, password="change-me-and-keep-it-in-a-secret-store",
                                    socket_connect_timeout=1)
                    info = None
                    for _ in range(100):
                        self.assertIsNone(proc.poll(), open(log.name, "rb").read().decode())
                        try:
                            info = r.info("cluster")
                            break
                        except redis.ConnectionError:
                            time.sleep(0.05)
                    self.assertEqual(info.get("cluster_enabled"), 1, name)
                    with self.assertRaises(redis.AuthenticationError):
                        redis.Redis(port=port).ping()
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
                    log.close()
                self.assertEqual(proc.returncode, 0, open(log.name, "rb").read().decode())


if __name__ == "__main__":
    unittest.main()
