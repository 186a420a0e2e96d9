"""Throwaway certificates for the TLS tests and benchmark: a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, an expired client certificate, and a client certificate from another CA."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, key, cert):
    with open(path + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(path + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _ca(cn):
    key = _key()
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(ca_key, ca_cert, cn, server, not_before, not_after):
    key = _key()
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def make_certs(folder):
    """Writes ca.crt, server.{crt,key}, client.{crt,key}, expired.{crt,key}, stranger.{crt,key} (signed by
    another CA) into folder; returns folder."""
    now = datetime.datetime.utcnow()
    ca_key, ca_cert = _ca("tally test CA")
    with open(os.path.join(folder, "ca.crt"), "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    day = datetime.timedelta(days=1)
    _write(os.path.join(folder, "server"), *_leaf(ca_key, ca_cert, "localhost", True, now - day, now + 30 * day))
    _write(os.path.join(folder, "client"), *_leaf(ca_key, ca_cert, "client", False, now - day, now + 30 * day))
    _write(os.path.join(folder, "expired"), *_leaf(ca_key, ca_cert, "old", False, now - 30 * day, now - day))
    other_key, other_cert = _ca("another CA")
    _write(os.path.join(folder, "stranger"), *_leaf(other_key, other_cert, "stranger", False, now - day, now + 30 * day))
    return folder


if __name__ == "__main__":
    import sys
    make_certs(sys.argv[1])
