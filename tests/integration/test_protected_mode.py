"""Protected mode, seen from a real non-loopback client: tallyd runs in a network namespace this test
makes (veth pair, private addresses that exist only inside it) and the client connects from outside."""
import os
import shutil
import socket
import subprocess
import time
import unittest

from harness import TALLYD, free_port, resp

NS = "tallyt%d" % os.getpid()
HOST_IF, NS_IF = "tvh%d" % (os.getpid() % 100000), "tvn%d" % (os.getpid() % 100000)
HOST_ADDR, NS_ADDR = "10.213.%d.1" % (os.getpid() % 250), "10.213.%d.2" % (os.getpid() % 250)


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip"), "needs root and iproute2 for a network namespace")
class ProtectedModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        sh("ip", "link", "set", NS_IF, "netns", NS)
        sh("ip", "addr", "add", HOST_ADDR + "/30", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", NS_ADDR + "/30", "dev", NS_IF)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)

    def start(self, *extra):
        port = free_port()
        proc = subprocess.Popen(["ip", "netns", "exec", NS, TALLYD, "--bind", NS_ADDR, "--port", str(port),
                                 "--memcached-port", "0", "--admin-port", "0", "--threads", "1"] + list(extra),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection((NS_ADDR, port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError("tallyd in the namespace did not start: %r" % proc.stdout.read())

    def stop(self, proc):
        proc.terminate()
        self.assertEqual(proc.wait(timeout=20), 0)

    def exchange(self, port, payload):
        with socket.create_connection((NS_ADDR, port), timeout=5) as s:
            if payload:
                s.sendall(payload)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data, True
                data += chunk
                if data.endswith(b"\r\n") and len(data) > 4 and not data.startswith(b"-DENIED"):
                    return data, False

    def test_remote_client_refused_without_password(self):
        proc, port = self.start()
        try:
            # The refusal comes at once, before the client says anything.
            data, closed = self.exchange(port, b"")
            self.assertTrue(data.startswith(b"-DENIED"), data)
            self.assertIn(b"protected mode", data)
            self.assertTrue(closed)
        finally:
            self.stop(proc)

    def test_remote_client_served_with_password(self):
        proc, port = self.start("--requirepass", "pw")
        try:
            data, _ = self.exchange(port, resp("AUTH", "pw") + resp("PING"))
            self.assertEqual(data, b"+OK\r\n+PONG\r\n")
        finally:
            self.stop(proc)

    def test_protected_mode_off(self):
        proc, port = self.start("--protected-mode", "no")
        try:
            data, _ = self.exchange(port, resp("PING"))
            self.assertEqual(data, b"+PONG\r\n")
        finally:
            self.stop(proc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
