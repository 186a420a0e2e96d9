// The peer handshake as a pure state machine: the right secret admits, a wrong one is refused on
// either side, a response or challenge recorded on one connection fails on another, a reflected proof
// fails, and hellos from strangers, other clusters or to other nodes are refused.
#include <string>

#include <gtest/gtest.h>

#include "host/transport/frame.h"
#include "host/transport/handshake.h"

namespace tally::transport {
namespace {

constexpr uint64_t kDialer = 1;
constexpr uint64_t kAcceptor = 2;

HandshakeConfig config(uint64_t self, std::string secret = "correct horse battery staple",
                       std::string cluster = "tally-test") {
  HandshakeConfig c;
  c.self = self;
  c.cluster_id = std::move(cluster);
  c.secret = std::move(secret);
  c.is_peer = [](uint64_t n) { return n == kDialer || n == kAcceptor; };
  return c;
}

// Encodes a handshake frame as its sender would and decodes it as the receiver would.
struct Wire {
  std::string bytes;
  FrameDecoder decoder{kHandshakePayloadBytesMax};
  Frame carry(const HandshakeFrame& hf, uint64_t from, uint64_t to) {
    bytes = encode_frame(hf.type, kNoGroup, from, to, hf.payload);
    decoder = FrameDecoder(kHandshakePayloadBytesMax);
    decoder.append(bytes);
    std::optional<Frame> f;
    EXPECT_EQ(decoder.next(f), FrameFault::kNone);
    EXPECT_TRUE(f.has_value());
    return *f;
  }
};

// Runs a whole handshake; returns the two final outcomes and the frames that crossed.
struct Exchange {
  HandshakeOutcome dialer = HandshakeOutcome::kContinue;
  HandshakeOutcome acceptor = HandshakeOutcome::kContinue;
  HandshakeFrame hello, challenge, response;
};

Exchange run_handshake(const HandshakeConfig& dc, const HandshakeConfig& ac) {
  Exchange r;
  Handshake d(dc, Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
  Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
  Wire w1, w2, w3, w4;
  Result<HandshakeFrame> hello = d.start();
  EXPECT_TRUE(hello.is_ok());
  r.hello = hello.value();
  HandshakeStep s = a.on_frame(w1.carry(r.hello, kDialer, kAcceptor));
  r.acceptor = s.outcome;
  if (s.outcome != HandshakeOutcome::kContinue) return r;
  r.challenge = s.out.at(0);
  s = d.on_frame(w2.carry(r.challenge, kAcceptor, kDialer));
  r.dialer = s.outcome;
  if (s.outcome != HandshakeOutcome::kContinue) return r;
  r.response = s.out.at(0);
  s = a.on_frame(w3.carry(r.response, kDialer, kAcceptor));
  r.acceptor = s.outcome;
  if (s.outcome != HandshakeOutcome::kDone) return r;
  EXPECT_EQ(s.out.at(0).type, FrameType::kAuthOk);
  EXPECT_EQ(a.peer(), kDialer);
  s = d.on_frame(w4.carry(s.out.at(0), kAcceptor, kDialer));
  r.dialer = s.outcome;
  EXPECT_TRUE(d.done() && a.done());
  return r;
}

TEST(Handshake, TheRightSecretAdmitsBothSides) {
  const HandshakeConfig dc = config(kDialer);
  const HandshakeConfig ac = config(kAcceptor);
  const Exchange r = run_handshake(dc, ac);
  EXPECT_EQ(r.dialer, HandshakeOutcome::kDone);
  EXPECT_EQ(r.acceptor, HandshakeOutcome::kDone);
  EXPECT_EQ(r.hello.type, FrameType::kHello);
  EXPECT_EQ(r.challenge.payload.size(), kNonceBytes + kProofBytes);
  EXPECT_EQ(r.response.payload.size(), kProofBytes);
  // Fresh nonces: a second connection's hello differs.
  const Exchange again = run_handshake(dc, ac);
  EXPECT_NE(r.hello.payload, again.hello.payload);
  EXPECT_NE(r.challenge.payload, again.challenge.payload);
}

TEST(Handshake, AWrongSecretIsRefusedOnEitherSide) {
  // The dialer has the wrong secret: the acceptor's proof fails at the dialer first.
  const HandshakeConfig bad = config(kDialer, "not the cluster secret at all");
  const HandshakeConfig ac = config(kAcceptor);
  Exchange r = run_handshake(bad, ac);
  EXPECT_EQ(r.dialer, HandshakeOutcome::kRefused);
  EXPECT_NE(r.acceptor, HandshakeOutcome::kDone);
  // A dialer that skips checking and answers anyway is refused by the acceptor.
  Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
  Handshake d(bad, Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
  Wire w;
  HandshakeStep s = a.on_frame(w.carry(d.start().value(), kDialer, kAcceptor));
  ASSERT_EQ(s.outcome, HandshakeOutcome::kContinue);
  Nonce nd{}, na{};
  const Proof forged = compute_proof(bad.secret, bad.cluster_id, nd, na, kDialer, kAcceptor, ProofDirection::kDialer);
  s = a.on_frame(w.carry({FrameType::kResponse, std::string(forged.begin(), forged.end())}, kDialer, kAcceptor));
  EXPECT_EQ(s.outcome, HandshakeOutcome::kRefused);
  EXPECT_FALSE(a.done());
}

TEST(Handshake, AResponseRecordedOnOneConnectionFailsOnAnother) {
  const HandshakeConfig dc = config(kDialer);
  const HandshakeConfig ac = config(kAcceptor);
  const Exchange recorded = run_handshake(dc, ac);
  ASSERT_EQ(recorded.acceptor, HandshakeOutcome::kDone);
  // An attacker without the secret replays the recorded hello and response on a new connection.
  Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
  Wire w;
  HandshakeStep s = a.on_frame(w.carry(recorded.hello, kDialer, kAcceptor));
  ASSERT_EQ(s.outcome, HandshakeOutcome::kContinue);
  EXPECT_NE(s.out.at(0).payload, recorded.challenge.payload);  // a fresh nonce
  s = a.on_frame(w.carry(recorded.response, kDialer, kAcceptor));
  EXPECT_EQ(s.outcome, HandshakeOutcome::kRefused);
  EXPECT_FALSE(a.done());
  // And a recorded challenge fails at a dialer with a fresh nonce.
  Handshake d(dc, Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
  ASSERT_TRUE(d.start().is_ok());
  s = d.on_frame(w.carry(recorded.challenge, kAcceptor, kDialer));
  EXPECT_EQ(s.outcome, HandshakeOutcome::kRefused);
}

TEST(Handshake, AReflectedProofFails) {
  // The acceptor's own proof, sent back to it as the dialer's response.
  const HandshakeConfig ac = config(kAcceptor);
  Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
  Handshake d(config(kDialer), Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
  Wire w;
  HandshakeStep s = a.on_frame(w.carry(d.start().value(), kDialer, kAcceptor));
  ASSERT_EQ(s.outcome, HandshakeOutcome::kContinue);
  const std::string proof = s.out.at(0).payload.substr(kNonceBytes);
  s = a.on_frame(w.carry({FrameType::kResponse, proof}, kDialer, kAcceptor));
  EXPECT_EQ(s.outcome, HandshakeOutcome::kRefused);
}

TEST(Handshake, StrangersOtherClustersAndMisdirectedHellosAreRefused) {
  const HandshakeConfig ac = config(kAcceptor);
  const HandshakeConfig stranger = config(77);
  Wire w;
  {
    Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
    Handshake d(stranger, Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
    EXPECT_EQ(a.on_frame(w.carry(d.start().value(), 77, kAcceptor)).outcome, HandshakeOutcome::kRefused);
  }
  {
    const HandshakeConfig other = config(kDialer, "correct horse battery staple", "another-cluster");
    EXPECT_EQ(run_handshake(other, ac).acceptor, HandshakeOutcome::kRefused);
  }
  {
    Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
    Handshake d(config(kDialer), Handshake::Role::kDialer, 3, openssl_random_fn());
    EXPECT_EQ(a.on_frame(w.carry(d.start().value(), kDialer, 3)).outcome, HandshakeOutcome::kRefused);
  }
  {
    // A challenge from a node other than the one dialed.
    Handshake d(config(kDialer), Handshake::Role::kDialer, kAcceptor, openssl_random_fn());
    ASSERT_TRUE(d.start().is_ok());
    EXPECT_EQ(d.on_frame(w.carry({FrameType::kChallenge, std::string(64, 'x')}, 3, kDialer)).outcome,
              HandshakeOutcome::kRefused);
  }
}

TEST(Handshake, FramesOutOfOrderAreMalformed) {
  const HandshakeConfig ac = config(kAcceptor);
  Wire w;
  {
    Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
    EXPECT_EQ(a.on_frame(w.carry({FrameType::kResponse, std::string(32, 'x')}, kDialer, kAcceptor)).outcome,
              HandshakeOutcome::kMalformed);
  }
  {
    Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
    EXPECT_EQ(a.on_frame(w.carry({FrameType::kHeartbeat, "hb"}, kDialer, kAcceptor)).outcome,
              HandshakeOutcome::kMalformed);
  }
  {
    Handshake a(ac, Handshake::Role::kAcceptor, 0, openssl_random_fn());
    EXPECT_EQ(a.on_frame(w.carry({FrameType::kHello, std::string(10, 'x')}, kDialer, kAcceptor)).outcome,
              HandshakeOutcome::kMalformed);
  }
}

TEST(Handshake, TheProofBindsEveryInput) {
  const Nonce n1{1}, n2{2};
  const Proof base = compute_proof("secret-secret-secret", "c", n1, n2, 1, 2, ProofDirection::kDialer);
  EXPECT_NE(base, compute_proof("secret-secret-secreT", "c", n1, n2, 1, 2, ProofDirection::kDialer));
  EXPECT_NE(base, compute_proof("secret-secret-secret", "d", n1, n2, 1, 2, ProofDirection::kDialer));
  EXPECT_NE(base, compute_proof("secret-secret-secret", "c", n2, n1, 1, 2, ProofDirection::kDialer));
  EXPECT_NE(base, compute_proof("secret-secret-secret", "c", n1, n2, 2, 1, ProofDirection::kDialer));
  EXPECT_NE(base, compute_proof("secret-secret-secret", "c", n1, n2, 1, 2, ProofDirection::kAcceptor));
  EXPECT_EQ(base, compute_proof("secret-secret-secret", "c", n1, n2, 1, 2, ProofDirection::kDialer));
}

TEST(Handshake, ConfigIsValidated) {
  EXPECT_TRUE(validate(config(1)).is_ok());
  EXPECT_FALSE(validate(config(0)).is_ok());
  EXPECT_FALSE(validate(config(1, "short")).is_ok());
  EXPECT_FALSE(validate(config(1, "correct horse battery staple", "")).is_ok());
  EXPECT_FALSE(validate(config(1, "correct horse battery staple", std::string(65, 'c'))).is_ok());
}

}  // namespace
}  // namespace tally::transport
