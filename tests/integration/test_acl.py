"""ACL users as Redis 6+ clients use them: redis-py with a username, HELLO 3 AUTH, NOPERM errors as
Redis words them, changes that reach connected clients, ACL LOG, the ACL file, failed-login limits,
memcached logins, and a side-by-side run against redis-server deciding the same commands."""
import os
import random
import shutil
import subprocess
import tempfile
import time
import unittest

import redis

from harness import Raw, RedisServer, ServerCase, Tallyd, free_port, resp


def user_client(port, user, password, **kw):
    return redis.Redis(port=port, username=user, password=password, decode_responses=True, socket_timeout=10, **kw)


class AclTest(ServerCase):
    extra = ("--durability", "none", "--auth-fail-burst", "0")

    def setUp(self):
        self.admin = self.client()
        for u in self.admin.execute_command("ACL", "USERS"):
            if u != "default":
                self.admin.execute_command("ACL", "DELUSER", u)
        self.admin.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~app:*", "%R~ro:*", "&news.*",
                                   "-@all", "+@read", "+set", "+publish", "+subscribe", "+multi", "+exec",
                                   "+config|get")
        self.admin.execute_command("ACL", "LOG", "RESET")

    def test_a_user_runs_what_it_may_and_gets_noperm_otherwise(self):
        a = user_client(self.server.port, "alice", "pw")
        self.assertTrue(a.set("app:1", "x"))
        self.assertEqual(a.get("app:1"), "x")
        self.assertIsNone(a.get("ro:1"))
        with self.assertRaises(redis.exceptions.NoPermissionError) as e:
            a.set("ro:1", "x")
        self.assertEqual(str(e.exception),
                         "this user has no permissions to access one of the keys used as arguments")
        with self.assertRaises(redis.exceptions.NoPermissionError) as e:
            a.delete("app:1")
        self.assertEqual(str(e.exception), "this user has no permissions to run the 'del' command")
        with self.assertRaises(redis.exceptions.NoPermissionError) as e:
            a.config_set("maxmemory", "1")
        self.assertEqual(str(e.exception), "this user has no permissions to run the 'config|set' command")
        self.assertIn("maxmemory", a.config_get("maxmemory"))
        with self.assertRaises(redis.exceptions.NoPermissionError) as e:
            a.publish("sports", "m")
        self.assertEqual(str(e.exception),
                         "this user has no permissions to access one of the channels used as arguments")
        self.assertEqual(a.publish("news.today", "m"), 0)
        self.assertEqual(self.admin.get("app:1"), "x")
        self.assertIsNone(self.admin.get("ro:1"))  # nothing a denied command touched was written

    def test_wrong_password_and_disabled_user(self):
        for user, password in (("alice", "bad"), ("nobody", "pw")):
            with self.assertRaisesRegex(redis.exceptions.RedisError, "WRONGPASS"):
                user_client(self.server.port, user, password).ping()
        self.admin.execute_command("ACL", "SETUSER", "alice", "off")
        with self.assertRaisesRegex(redis.exceptions.RedisError, "WRONGPASS"):
            user_client(self.server.port, "alice", "pw").ping()

    def test_hello_3_auth_and_whoami(self):
        raw = Raw(self.server.port)
        raw.send(resp("HELLO", "3", "AUTH", "alice", "bad"))
        self.assertEqual(raw.read_until(b"\r\n"), b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        raw.send(resp("HELLO", "3", "AUTH", "alice", "pw"))
        self.assertTrue(raw.read_until(b"modules\r\n*0\r\n").startswith(b"%7\r\n"))
        raw.send(resp("ACL", "WHOAMI"))
        self.assertEqual(raw.read_until(b"\r\n"), b"-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n")
        raw.send(resp("CLIENT", "LIST"))
        self.assertTrue(raw.read_until(b"\r\n").startswith(b"-NOPERM"))
        raw.close()
        self.assertEqual(self.admin.execute_command("ACL", "WHOAMI"), "default")
        self.admin.execute_command("ACL", "SETUSER", "bob", "on", "nopass", "+@all", "-@admin", "~*")
        b = user_client(self.server.port, "bob", "any")
        self.assertEqual(b.execute_command("ACL", "WHOAMI"), "bob")
        self.assertEqual(b.client_info()["user"], "bob")

    def test_a_denied_command_in_multi_aborts_exec(self):
        raw = Raw(self.server.port)
        raw.send(resp("AUTH", "alice", "pw") + resp("MULTI") + resp("SET", "app:t", "1") + resp("DEL", "app:t") +
                 resp("EXEC"))
        self.assertEqual(raw.read_until(b"errors.\r\n"),
                         b"+OK\r\n+OK\r\n+QUEUED\r\n-NOPERM this user has no permissions to run the 'del' command\r\n"
                         b"-EXECABORT Transaction discarded because of previous errors.\r\n")
        raw.close()
        self.assertIsNone(self.admin.get("app:t"))
        log = self.admin.acl_log()
        self.assertEqual(log[0]["reason"], "command")
        self.assertEqual(log[0]["context"], "multi")
        self.assertEqual(log[0]["object"], "del")
        self.assertEqual(log[0]["username"], "alice")

    def test_changes_reach_connected_clients_and_deluser_disconnects(self):
        a = user_client(self.server.port, "alice", "pw")
        self.assertIsNone(a.get("app:x"))
        self.admin.execute_command("ACL", "SETUSER", "alice", "-get")
        with self.assertRaises(redis.exceptions.NoPermissionError):
            a.get("app:x")
        raw = Raw(self.server.port)
        raw.send(resp("AUTH", "alice", "pw"))
        self.assertEqual(raw.read_until(b"\r\n"), b"+OK\r\n")
        self.assertEqual(self.admin.execute_command("ACL", "DELUSER", "alice", "ghost"), 1)
        raw.send(resp("PING"))
        self.assertTrue(raw.closed_by_peer())
        with self.assertRaises(redis.exceptions.ResponseError) as e:
            self.admin.execute_command("ACL", "DELUSER", "default")
        self.assertEqual(str(e.exception), "The 'default' user cannot be removed")

    def test_a_subscriber_whose_channels_are_taken_away_is_disconnected(self):
        raw = Raw(self.server.port)
        raw.send(resp("AUTH", "alice", "pw") + resp("SUBSCRIBE", "news.a"))
        self.assertEqual(raw.read_until(b"\r\n"), b"+OK\r\n")
        raw.read_until(b":1\r\n")
        raw.send(resp("SUBSCRIBE", "sports"))
        self.assertIn(b"NOPERM", raw.read_until(b"\r\n"))
        self.admin.execute_command("ACL", "SETUSER", "alice", "resetchannels", "&other")
        raw.send(resp("PING"))
        self.assertTrue(raw.closed_by_peer())

    def test_acl_log_and_counters(self):
        a = user_client(self.server.port, "alice", "pw")
        for _ in range(3):
            with self.assertRaises(redis.exceptions.NoPermissionError):
                a.set("elsewhere", "1")
        with self.assertRaisesRegex(redis.exceptions.RedisError, "WRONGPASS"):
            user_client(self.server.port, "alice", "nope").ping()
        log = self.admin.acl_log()
        by_reason = {e["reason"]: e for e in log}
        self.assertEqual(by_reason["key"]["count"], 3)
        self.assertEqual(by_reason["key"]["object"], "elsewhere")
        self.assertEqual(by_reason["auth"]["username"], "alice")
        self.assertEqual(by_reason["key"]["client-info"]["user"], "alice")
        self.assertEqual(len(self.admin.acl_log(count=1)), 1)
        stats = self.admin.info("stats")
        self.assertGreaterEqual(stats["acl_access_denied_key"], 3)
        self.assertGreaterEqual(stats["acl_access_denied_auth"], 1)

    def test_requirepass_is_the_default_users_password(self):
        self.admin.config_set("requirepass", "s3cret")
        try:
            with self.assertRaises(redis.exceptions.AuthenticationError):
                redis.Redis(port=self.server.port).ping()
            self.assertTrue(redis.Redis(port=self.server.port, password="s3cret").ping())
            self.assertTrue(user_client(self.server.port, "default", "s3cret").ping())
            flags = self.admin.execute_command("ACL", "GETUSER", "default")
            self.assertEqual(len(flags[3]), 1)  # passwords: one hash
            self.assertNotIn("s3cret", " ".join(self.admin.execute_command("ACL", "LIST")))
        finally:
            self.admin.config_set("requirepass", "")
        self.assertTrue(redis.Redis(port=self.server.port).ping())

    def test_failed_logins_are_limited_per_address(self):
        self.admin.config_set("auth-fail-burst", "3")
        self.admin.config_set("auth-fail-per-sec", "1")
        try:
            raw = Raw(self.server.port)
            for _ in range(3):
                raw.send(resp("AUTH", "alice", "wrong"))
                self.assertTrue(raw.read_until(b"\r\n").startswith(b"-WRONGPASS"))
            # Even the right password is refused now: the address must wait.
            raw.send(resp("AUTH", "alice", "pw"))
            self.assertEqual(raw.read_until(b"\r\n"), b"-ERR too many failed logins from this address; try again later\r\n")
            time.sleep(1.1)
            raw.send(resp("AUTH", "alice", "pw"))
            self.assertEqual(raw.read_until(b"\r\n"), b"+OK\r\n")
            self.assertGreaterEqual(self.admin.info("stats")["acl_auth_rate_limited"], 1)
        finally:
            self.admin.config_set("auth-fail-burst", "0")

    def test_bad_input_to_acl_commands_never_breaks_the_server(self):
        rng = random.Random(7)
        words = ["SETUSER", "GETUSER", "DELUSER", "LIST", "USERS", "CAT", "GENPASS", "DRYRUN", "LOG", "LOAD",
                 "SAVE", "WHOAMI", "HELP", "fuzz", "default", "on", "off", ">", "<", "#", "!", "~", "%", "%RW~",
                 "&", "+", "-", "+@", "-@", "+@all", "+get|", "+config|get|x", "(", "()", "reset", "-1",
                 "99999999999999999999", "", "\x00", "a b", "+" + "x" * 5000, "nopass", "allkeys"]
        raw = Raw(self.server.port)
        for _ in range(2000):
            argv = ["ACL"] + [rng.choice(words) for _ in range(rng.randint(0, 5))]
            if len(argv) > 2 and argv[1] == "SETUSER" and argv[2] == "default":
                argv[2] = "fuzz"  # keep the admin connection's own user as it is
            if len(argv) > 1 and argv[1] in ("DELUSER",) and "default" in argv:
                continue
            raw.send(resp(*argv))
            first = raw.read_until(b"\r\n")
            self.assertIn(first[:1], b"+-:$*%_,", first)
            # Read the rest of any aggregate by asking for a sentinel.
            raw.send(resp("ECHO", "sentinel-x"))
            raw.read_until(b"sentinel-x\r\n")
        self.assertTrue(self.admin.ping())
        self.assertEqual(self.admin.execute_command("ACL", "WHOAMI"), "default")

    def test_genpass_and_cat(self):
        p = self.admin.execute_command("ACL", "GENPASS")
        self.assertEqual(len(p), 64)
        self.assertNotEqual(p, self.admin.execute_command("ACL", "GENPASS"))
        self.assertEqual(len(self.admin.execute_command("ACL", "GENPASS", "5")), 2)
        self.assertIn("get", self.admin.acl_cat("read"))
        self.assertNotIn("set", self.admin.acl_cat("read"))
        with self.assertRaises(redis.exceptions.ResponseError):
            self.admin.acl_cat("nosuch")


class AclFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tally-acl-")
        self.path = os.path.join(self.dir, "users.acl")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_users_come_from_the_file_and_go_back_to_it(self):
        with open(self.path, "w") as f:
            f.write("# operators\nuser default on nopass ~* &* +@all\nuser ops on >opspw ~* -@all +get +info\n")
        with Tallyd("--aclfile", self.path, threads=1) as srv:
            ops = user_client(srv.port, "ops", "opspw")
            self.assertIsNone(ops.get("k"))
            with self.assertRaises(redis.exceptions.NoPermissionError):
                ops.set("k", "v")
            admin = redis.Redis(port=srv.port, decode_responses=True)
            admin.execute_command("ACL", "SETUSER", "ops", "+set")
            admin.execute_command("ACL", "SETUSER", "app", "on", ">apppw", "~app:*", "+@string")
            self.assertEqual(admin.execute_command("ACL", "SAVE"), "OK")
            text = open(self.path).read()
            self.assertIn("user app on #", text)
            self.assertNotIn("apppw", text)
            # An edit of the file takes effect with ACL LOAD; a bad line changes nothing.
            with open(self.path, "a") as f:
                f.write("user broken on +nosuch\n")
            with self.assertRaises(redis.exceptions.ResponseError) as e:
                admin.execute_command("ACL", "LOAD")
            self.assertIn("users.acl:4", str(e.exception))
            self.assertIn("app", admin.execute_command("ACL", "USERS"))
            with open(self.path, "w") as f:
                f.write("user ops on >new ~* +@all\n")
            self.assertEqual(admin.execute_command("ACL", "LOAD"), "OK")
            self.assertEqual(sorted(admin.execute_command("ACL", "USERS")), ["default", "ops"])
            self.assertTrue(user_client(srv.port, "ops", "new").set("k", "v"))

    def test_a_bad_file_stops_the_start_with_its_line(self):
        with open(self.path, "w") as f:
            f.write("user ok on nopass\nuser bad on %Q~x\n")
        port = free_port()
        p = subprocess.run([os.environ.get("TALLYD", "tallyd"), "--port", str(port), "--memcached-port", "0",
                            "--admin-port", "0", "--aclfile", self.path], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("users.acl:2", p.stdout + p.stderr)

    def test_without_a_file_load_and_save_say_so(self):
        with Tallyd(threads=1) as srv:
            c = redis.Redis(port=srv.port, decode_responses=True)
            with self.assertRaises(redis.exceptions.ResponseError) as e:
                c.execute_command("ACL", "SAVE")
            self.assertIn("not configured to use an ACL file", str(e.exception))


class AclMemcachedTest(unittest.TestCase):
    def test_memcached_logins_name_an_unrestricted_acl_user(self):
        with Tallyd("--requirepass", "pw", threads=1) as srv:
            c = redis.Redis(port=srv.port, password="pw", decode_responses=True)
            c.execute_command("ACL", "SETUSER", "cache", "on", ">cpw", "~*", "&*", "+@all")
            c.execute_command("ACL", "SETUSER", "narrow", "on", ">npw", "~x", "+get")
            for login, ok in ((b"narrow npw", False), (b"cache bad", False), (b"cache cpw", True)):
                raw = Raw(srv.mc_port)
                raw.send(b"set auth 0 0 %d\r\n%s\r\n" % (len(login), login))
                reply = raw.read_until(b"\r\n")
                self.assertEqual(reply, b"STORED\r\n" if ok else b"CLIENT_ERROR authentication failure\r\n", login)
                raw.close()


@unittest.skipUnless(shutil.which("redis-server"), "redis-server not installed")
class AclAgainstRedisTest(unittest.TestCase):
    """The same users on redis-server and tallyd decide a battery of commands the same way (ACL DRYRUN),
    refuse the same bad rules with the same words and answer NOPERM with the same text."""

    RULES = ["on", "off", "nopass", ">a", "~k1*", "~k2", "allkeys", "resetkeys", "&c*", "allchannels",
             "resetchannels", "+@all", "-@all", "+@read", "-@read", "+@write", "-@write", "+@hash", "-@hash",
             "+@string", "+@list", "-@list", "+@admin", "-@admin", "+@dangerous", "-@dangerous", "+@keyspace",
             "-@keyspace", "+@fast", "-@fast", "+@slow", "-@slow", "+@pubsub", "-@pubsub", "+@connection",
             "+@transaction", "+@stream", "+@sortedset", "+@set", "+@bitmap", "+get", "-get", "+set", "-set",
             "+hset", "-hset", "+config|get", "-config|set", "+client|list", "+acl|whoami", "+acl", "-acl",
             "+keys", "-keys", "+publish", "+subscribe", "-subscribe", "reset", "+del", "-del", "+xadd"]
    PROBES = [["get", "k1a"], ["get", "k2"], ["get", "zz"], ["set", "k1", "v"], ["set", "zz", "v"],
              ["hset", "k1", "f", "v"], ["hget", "k2", "f"], ["lpush", "k1", "v"], ["lrange", "k2", "0", "1"],
              ["zadd", "k1", "1", "m"], ["sadd", "k2", "m"], ["xadd", "k1", "*", "f", "v"],
              ["config", "get", "x"], ["config", "set", "x", "y"], ["client", "list"], ["client", "kill", "x"], ["client", "info"], ["client", "setname", "n"], ["acl", "cat"],
              ["acl", "whoami"], ["acl", "setuser", "x"], ["acl", "list"], ["flushall"], ["flushdb"],
              ["keys", "*"], ["publish", "c1", "m"], ["publish", "d", "m"], ["subscribe", "c1"],
              ["subscribe", "c1", "d"], ["psubscribe", "c*"], ["psubscribe", "*"], ["del", "k1", "zz"],
              ["mget", "k1", "k2"], ["mset", "k1", "v", "zz", "v"], ["dbsize"], ["info"], ["ping"],
              ["multi"], ["exec"], ["incr", "k2"], ["getrange", "k2", "0", "1"], ["setbit", "k2", "1", "1"],
              ["expire", "k1", "10"], ["type", "k1"], ["scan", "0"], ["blpop", "k1", "1"], ["echo", "x"],
              ["xread", "streams", "k1", "0"], ["xread", "streams", "k1", "zz", "0", "0"], ["time"],
              ["sintercard", "2", "k1", "zz"], ["lmpop", "2", "k1", "k2", "left"], ["wait", "0", "0"]]

    def setUp(self):
        self.redis_server = RedisServer().start()
        self.redis_port = self.redis_server.port
        self.tally = Tallyd(threads=1)
        self.tally.start()
        self.r = redis.Redis(port=self.redis_port, decode_responses=True)
        self.t = redis.Redis(port=self.tally.port, decode_responses=True)

    def tearDown(self):
        self.tally.stop()
        self.redis_server.stop()

    def both(self, *args):
        out = []
        for c in (self.r, self.t):
            try:
                out.append(c.execute_command(*args))
            except redis.exceptions.ResponseError as e:
                out.append("error: " + str(e))
        return out

    def test_random_users_decide_every_probe_the_same_way(self):
        rng = random.Random(11)
        compared = 0
        for n in range(300):
            name = "u%d" % n
            rules = [rng.choice(self.RULES) for _ in range(rng.randint(1, 8))]
            a, b = self.both("ACL", "SETUSER", name, *rules)
            self.assertEqual(a, b, rules)
            for probe in self.PROBES:
                a, b = self.both("ACL", "DRYRUN", name, *probe)
                self.assertEqual(a, b, (rules, probe))
                compared += 1
        self.assertEqual(compared, 300 * len(self.PROBES))

    def test_bad_rules_and_noperm_texts_match(self):
        for rule in ["#abc", "!abc", "<nope", "+nosuch", "+@nosuch", "-get|foo", "+config|get|x", "%X~a",
                     "badrule", "allkeys ~x", "allchannels &x"]:
            a, b = self.both("ACL", "SETUSER", "x", *rule.split())
            self.assertEqual(a, b, rule)
        for args in [("GETUSER", "nobody"), ("DRYRUN", "nobody", "get", "a"), ("DRYRUN", "default", "nosuch"),
                     ("DRYRUN", "default", "get"), ("CAT", "nosuch"), ("GENPASS", "0"), ("GENPASS", "4097"),
                     ("nosuch",), ("LOAD",), ("SAVE",), ("WHOAMI", "x"), ("DELUSER", "default")]:
            a, b = self.both("ACL", *args)
            self.assertEqual(a, b, args)
        for c in (self.r, self.t):
            c.execute_command("ACL", "SETUSER", "alice", "on", ">pw", "~k*", "&c*", "-@all", "+get", "+set",
                              "+publish", "+config|get")
        texts = []
        for port in (self.redis_port, self.tally.port):
            a = user_client(port, "alice", "pw")
            got = []
            for args in [("SET", "zz", "v"), ("DEL", "k"), ("PUBLISH", "d", "m"), ("CONFIG", "SET", "a", "b"),
                         ("GET", "zz")]:
                try:
                    a.execute_command(*args)
                    got.append("ok")
                except redis.exceptions.ResponseError as e:
                    got.append(type(e).__name__ + ": " + str(e))
            texts.append(got)
        self.assertEqual(texts[0], texts[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
