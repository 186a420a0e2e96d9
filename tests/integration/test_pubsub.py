"""Publish/subscribe against a real tallyd: redis-py's PubSub (channels, patterns), subscribers on
every shard, RESP2 subscribed mode and RESP3 pushes on raw connections, PUBSUB introspection, many
subscribers, and a subscriber that never reads: it is disconnected at the output limit while the
server and the other subscribers go on."""
import socket
import time
import unittest

import redis

from harness import Raw, Tallyd, resp


class PubSubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Tallyd("--client-output-limit", "1mb", threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.r = redis.Redis(port=self.server.port, decode_responses=True)

    def next_message(self, ps, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if m is not None:
                return m
        self.fail("no message within %ss" % timeout)

    def test_channels_and_patterns_with_redis_py(self):
        ps = self.r.pubsub()
        ps.subscribe("news")
        ps.psubscribe("news.*")
        self.assertEqual(ps.get_message(timeout=2)["type"], "subscribe")
        self.assertEqual(ps.get_message(timeout=2)["type"], "psubscribe")
        self.assertEqual(self.r.publish("news", "hello"), 1)
        m = self.next_message(ps)
        self.assertEqual((m["type"], m["channel"], m["data"]), ("message", "news", "hello"))
        self.assertEqual(self.r.publish("news.sport", "goal"), 1)
        m = self.next_message(ps)
        self.assertEqual((m["type"], m["pattern"], m["channel"], m["data"]), ("pmessage", "news.*", "news.sport", "goal"))
        self.assertEqual(self.r.publish("nobody", "x"), 0)
        self.assertIn("news", self.r.pubsub_channels())
        self.assertEqual(self.r.pubsub_numsub("news", "nobody"), [("news", 1), ("nobody", 0)])
        self.assertEqual(self.r.pubsub_numpat(), 1)
        ps.unsubscribe("news")
        ps.punsubscribe()
        ps.close()
        time.sleep(0.1)
        self.assertEqual(self.r.publish("news", "gone"), 0)

    def test_subscribers_on_every_shard_each_get_every_message(self):
        subs = []
        for _ in range(8):  # connections spread over both shards
            ps = redis.Redis(port=self.server.port, decode_responses=True).pubsub()
            ps.subscribe("fan")
            ps.get_message(timeout=2)
            subs.append(ps)
        for i in range(5):
            self.assertEqual(self.r.publish("fan", "m%d" % i), 8)
        for ps in subs:
            self.assertEqual([self.next_message(ps)["data"] for _ in range(5)], ["m%d" % i for i in range(5)])
            ps.close()

    def test_resp2_subscribed_mode_and_resp3_pushes(self):
        raw = Raw(self.server.port)
        raw.send(resp("SUBSCRIBE", "a", "b"))
        self.assertEqual(raw.read_until(b":2\r\n"),
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
        raw.send(resp("GET", "k") + resp("PING"))
        self.assertEqual(raw.read_until(b"$0\r\n\r\n"),
                         b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
                         b"are allowed in this context\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        raw.send(resp("UNSUBSCRIBE"))
        self.assertEqual(raw.read_until(b":0\r\n"),
                         b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        raw.send(resp("GET", "k"))  # out of subscribed mode
        self.assertEqual(raw.read_until(b"\r\n"), b"$-1\r\n")
        raw.send(resp("HELLO", "3"))
        raw.read_until(b"modules\r\n*0\r\n")
        raw.send(resp("SUBSCRIBE", "c") + resp("GET", "k"))  # RESP3: commands go on while subscribed
        self.assertEqual(raw.read_until(b"_\r\n"), b">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n_\r\n")
        self.assertEqual(self.r.publish("c", "hi"), 1)
        self.assertEqual(raw.read_until(b"hi\r\n"), b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n")
        # RESET: subscriptions, MULTI and RESP3 gone; back to a fresh RESP2 connection.
        raw.send(resp("MULTI") + resp("RESET") + resp("GET", "k") + resp("EXEC"))
        self.assertEqual(raw.read_until(b"MULTI\r\n"), b"+OK\r\n+RESET\r\n$-1\r\n-ERR EXEC without MULTI\r\n")
        self.assertEqual(self.r.publish("c", "after reset"), 0)
        raw.close()

    def test_a_subscriber_that_never_reads_is_disconnected_not_the_server(self):
        slow = socket.create_connection(("127.0.0.1", self.server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(resp("SUBSCRIBE", "flood"))
        good = self.r.pubsub()
        good.subscribe("flood")
        good.get_message(timeout=2)
        time.sleep(0.2)
        payload = "x" * 10000
        receivers = []
        for i in range(1200):  # 12 MB at the slow one: past the kernel's socket buffers and its 1 MB limit
            receivers.append(self.r.publish("flood", payload))
            if i % 20 == 0:
                while good.get_message(timeout=0.01):
                    pass
        self.assertEqual(receivers[0], 2)
        self.assertEqual(receivers[-1], 1, "the subscriber over its output limit was not disconnected")
        self.assertTrue(self.server.alive())
        self.assertTrue(self.r.ping())
        good.close()
        slow.close()


if __name__ == "__main__":
    unittest.main()
