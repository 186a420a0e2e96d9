"""A peer of the cluster written from docs/peer-protocol.md alone: frames (CRC32C over header and
payload), the dialer's side of the HMAC handshake, and the forward frame (type 20). The tests use it
to be a member that lies: a node that holds the secret but sends what no correct member would."""
import hashlib
import hmac
import os
import socket
import struct

NO_GROUP = 0xFFFFFFFF
HELLO, CHALLENGE, RESPONSE, AUTH_OK, FORWARD, FORWARD_REPLY = 1, 2, 3, 4, 20, 21


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def frame(ftype, src, dst, payload, group=NO_GROUP):
    head = b"TLYP" + struct.pack("<BBHIIQQ", 1, ftype, 0, len(payload), group, src, dst)
    return head + struct.pack("<II", crc32c(head), crc32c(head + payload)) + payload


def forward_payload(request_id, partition, argv):
    out = struct.pack("<QII", request_id, partition, len(argv))
    for a in argv:
        a = a.encode() if isinstance(a, str) else a
        out += struct.pack("<I", len(a)) + a
    return out


class Peer:
    """Dials `port` as node `me`, proving it knows `secret`, toward node `them`."""

    def __init__(self, port, me, them, secret, cluster_id=b"tally"):
        self.me, self.them = me, them
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        nonce_d = os.urandom(32)
        self.sock.sendall(frame(HELLO, me, them, nonce_d + bytes([len(cluster_id)]) + cluster_id))
        ftype, payload = self.read()
        assert ftype == CHALLENGE, ftype
        nonce_a = payload[:32]

        def proof(direction):
            msg = (b"tally-peer-auth-v1" + bytes([len(cluster_id)]) + cluster_id + nonce_d + nonce_a +
                   struct.pack("<QQ", me, them) + bytes([direction]))
            return hmac.new(secret, msg, hashlib.sha256).digest()

        assert hmac.compare_digest(payload[32:64], proof(2)), "the acceptor's proof"
        self.sock.sendall(frame(RESPONSE, me, them, proof(1)))
        ftype, _ = self.read()
        assert ftype == AUTH_OK, ftype

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def read(self):
        head = self._exact(40)
        ftype, length = head[5], struct.unpack("<I", head[8:12])[0]
        return ftype, self._exact(length)

    def send(self, ftype, payload):
        self.sock.sendall(frame(ftype, self.me, self.them, payload))

    def close(self):
        self.sock.close()
