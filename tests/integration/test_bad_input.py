"""Bad input never crashes tallyd: each case gets an error reply or a closed connection, and another
client's PING still answers."""
import socket
import time
import unittest

from harness import Raw, Tallyd, resp


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Tallyd("--proto-max-bulk-len", "2mb", threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        # The server and other clients carry on.
        other = Raw(self.server.port)
        other.send(resp("PING"))
        self.assertEqual(other.read_until(b"\r\n"), b"+PONG\r\n")
        other.close()
        self.assertTrue(self.server.alive())

    def expect_error_then_close(self, payload, fragment=b"Protocol error"):
        c = Raw(self.server.port)
        c.send(payload)
        line = c.read_until(b"\r\n")
        self.assertTrue(line.startswith(b"-"), line)
        self.assertIn(fragment, line)
        self.assertTrue(c.closed_by_peer())

    def test_garbage_bytes(self):
        self.expect_error_then_close(b"*x\r\n", b"invalid multibulk length")

    def test_huge_multibulk_count(self):
        self.expect_error_then_close(b"*4294967295\r\n", b"invalid multibulk length")

    def test_negative_bulk_length(self):
        self.expect_error_then_close(b"*1\r\n$-2\r\n", b"invalid bulk length")

    def test_huge_bulk_length(self):
        self.expect_error_then_close(b"*1\r\n$9999999999\r\n", b"invalid bulk length")

    def test_bulk_over_limit(self):
        self.expect_error_then_close(b"*2\r\n$3\r\nSET\r\n$3000000\r\n", b"invalid bulk length")

    def test_expected_dollar(self):
        self.expect_error_then_close(b"*1\r\n+PING\r\n", b"expected '$'")

    def test_bare_newline_is_an_empty_inline_command(self):
        c = Raw(self.server.port)
        c.send(b"\n\n" + resp("PING"))
        self.assertEqual(c.read_until(b"\r\n"), b"+PONG\r\n")

    def test_unbalanced_quotes(self):
        self.expect_error_then_close(b'SET "abc\r\n', b"unbalanced quotes")

    def test_nul_bytes_in_keys(self):
        c = Raw(self.server.port)
        key = b"a\x00b\x00"
        c.send(resp(b"SET", key, b"v\x00") + resp(b"GET", key) + resp(b"GET", b"a"))
        self.assertEqual(c.read_until(b"+OK\r\n"), b"+OK\r\n")
        self.assertEqual(c.read_exact(len(b"$2\r\nv\x00\r\n")), b"$2\r\nv\x00\r\n")
        self.assertEqual(c.read_until(b"\r\n"), b"$-1\r\n")

    def test_one_megabyte_key(self):
        c = Raw(self.server.port)
        key = b"k" * (1 << 20)
        c.send(resp(b"SET", key, b"big") + resp(b"GET", key) + resp(b"DEL", key))
        self.assertEqual(c.read_until(b"\r\n"), b"+OK\r\n")
        self.assertEqual(c.read_until(b"big\r\n"), b"$3\r\nbig\r\n")
        self.assertEqual(c.read_until(b"\r\n"), b":1\r\n")

    def test_hundred_thousand_arguments(self):
        c = Raw(self.server.port, timeout=30)
        args = [b"SADD", b"bigset"] + [b"m%d" % i for i in range(100000)]
        c.send(resp(*args))
        self.assertEqual(c.read_until(b"\r\n"), b":100000\r\n")
        c.send(resp(b"SCARD", b"bigset") + resp(b"DEL", b"bigset"))
        self.assertEqual(c.read_until(b"\r\n"), b":100000\r\n")
        self.assertEqual(c.read_until(b"\r\n"), b":1\r\n")

    def test_half_a_command_then_disconnect(self):
        for cut in (1, 5, 12, 20):
            s = socket.create_connection(("127.0.0.1", self.server.port))
            s.sendall(resp("SET", "half", "x" * 100)[:cut])
            s.close()
        c = Raw(self.server.port)
        c.send(resp("EXISTS", "half"))
        self.assertEqual(c.read_until(b"\r\n"), b":0\r\n")

    def test_wrong_type_and_bad_numbers(self):
        c = Raw(self.server.port)
        c.send(resp("SET", "str", "abc") + resp("HGET", "str", "f") + resp("INCR", "str") +
               resp("SET", "n", "9223372036854775807") + resp("INCR", "n") + resp("EXPIRE", "n", "x"))
        self.assertTrue(c.read_until(b"\r\n").startswith(b"+OK"))
        self.assertTrue(c.read_until(b"\r\n").startswith(b"-WRONGTYPE"))
        self.assertEqual(c.read_until(b"\r\n"), b"-ERR value is not an integer or out of range\r\n")
        self.assertTrue(c.read_until(b"\r\n").startswith(b"+OK"))
        self.assertEqual(c.read_until(b"\r\n"), b"-ERR increment or decrement would overflow\r\n")
        self.assertEqual(c.read_until(b"\r\n"), b"-ERR value is not an integer or out of range\r\n")

    def test_client_that_stops_reading_is_disconnected(self):
        c = Raw(self.server.port)
        c.send(resp("SET", "blob", "x" * (1 << 20)))
        c.read_until(b"+OK\r\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # 200 replies of 1 MiB exceed the 64 MiB output limit while we read nothing.
        c.send(resp("GET", "blob") * 200)
        time.sleep(3)  # read nothing while the server queues replies
        self.assertTrue(c.closed_by_peer(timeout=20))
        self.assertLess(len(c.buf), 200 << 20)


if __name__ == "__main__":
    unittest.main(verbosity=2)
