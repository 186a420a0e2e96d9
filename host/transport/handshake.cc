#include "host/transport/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "host/common/assert.h"

namespace tally::transport {

namespace {

void append64(std::string& s, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian host (frame.cc asserts it)
  s.append(b, 8);
}

bool proofs_equal(const Proof& a, std::string_view b) {
  return b.size() == kProofBytes && CRYPTO_memcmp(a.data(), b.data(), kProofBytes) == 0;
}

}  // namespace

const RandomFn& openssl_random_fn() {
  static const RandomFn fn = [](uint8_t* out, size_t bytes) {
    TALLY_ASSERT(out != nullptr && bytes <= 1024);
    return RAND_bytes(out, static_cast<int>(bytes)) == 1;
  };
  return fn;
}

Proof compute_proof(std::string_view secret, std::string_view cluster_id, const Nonce& nonce_dialer,
                    const Nonce& nonce_acceptor, uint64_t dialer, uint64_t acceptor, ProofDirection dir) {
  TALLY_ASSERT(!secret.empty());
  TALLY_ASSERT(!cluster_id.empty() && cluster_id.size() <= kClusterIdBytesMax);
  std::string msg;
  msg.reserve(kAuthLabel.size() + 1 + cluster_id.size() + 2 * kNonceBytes + 16 + 1);
  msg.append(kAuthLabel);
  msg.push_back(static_cast<char>(cluster_id.size()));
  msg.append(cluster_id);
  msg.append(reinterpret_cast<const char*>(nonce_dialer.data()), kNonceBytes);
  msg.append(reinterpret_cast<const char*>(nonce_acceptor.data()), kNonceBytes);
  append64(msg, dialer);
  append64(msg, acceptor);
  msg.push_back(static_cast<char>(dir));
  Proof out{};
  unsigned int len = 0;
  const unsigned char* r = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                                reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(), &len);
  TALLY_ASSERT_MSG(r != nullptr && len == kProofBytes, "HMAC-SHA256 failed");
  return out;
}

Status validate(const HandshakeConfig& c) {
  if (c.self == 0) return Status::invalid("node id must be non-zero");
  if (c.cluster_id.empty() || c.cluster_id.size() > kClusterIdBytesMax) {
    return Status::invalid("cluster id must hold 1 to 64 bytes");
  }
  if (c.secret.size() < kSecretBytesMin) return Status::invalid("cluster secret must hold at least 16 bytes");
  if (c.is_peer == nullptr) return Status::invalid("is_peer is required");
  return Status::ok();
}

Handshake::Handshake(HandshakeConfig config, Role role, uint64_t peer, RandomFn random)
    : config_(std::move(config)), role_(role), peer_(peer), random_(std::move(random)),
      state_(role == Role::kDialer ? State::kIdle : State::kAwaitHello) {
  TALLY_ASSERT(validate(config_).is_ok());
  TALLY_ASSERT((role == Role::kDialer) == (peer != 0));
  TALLY_ASSERT(peer != config_.self);
  TALLY_ASSERT(random_ != nullptr);
}

HandshakeStep Handshake::fail(HandshakeOutcome outcome, std::string why) {
  TALLY_ASSERT(outcome == HandshakeOutcome::kRefused || outcome == HandshakeOutcome::kMalformed);
  state_ = State::kFailed;
  HandshakeStep step;
  step.outcome = outcome;
  step.why = std::move(why);
  return step;
}

Result<HandshakeFrame> Handshake::start() {
  TALLY_ASSERT(role_ == Role::kDialer && state_ == State::kIdle);
  if (!random_(nonce_self_.data(), kNonceBytes)) return Status::unavailable("no random bytes for a nonce");
  HandshakeFrame hello{FrameType::kHello, {}};
  hello.payload.append(reinterpret_cast<const char*>(nonce_self_.data()), kNonceBytes);
  hello.payload.push_back(static_cast<char>(config_.cluster_id.size()));
  hello.payload.append(config_.cluster_id);
  state_ = State::kAwaitChallenge;
  return hello;
}

HandshakeStep Handshake::on_frame(const Frame& f) {
  TALLY_ASSERT(state_ != State::kIdle);
  if (state_ == State::kDone || state_ == State::kFailed) {
    return fail(HandshakeOutcome::kMalformed, "handshake frame after the handshake ended");
  }
  // Every handshake frame is addressed to this node, outside any group.
  if (f.header.destination != config_.self) {
    return fail(HandshakeOutcome::kRefused, "addressed to node " + std::to_string(f.header.destination));
  }
  if (f.header.group != kNoGroup) return fail(HandshakeOutcome::kMalformed, "handshake frame with a group");
  if (peer_ != 0 && f.header.source != peer_) {
    return fail(HandshakeOutcome::kRefused, "from node " + std::to_string(f.header.source) + ", expected " +
                                                std::to_string(peer_));
  }
  switch (state_) {
    case State::kAwaitHello:
      if (f.header.type != FrameType::kHello) break;
      return on_hello(f);
    case State::kAwaitChallenge:
      if (f.header.type != FrameType::kChallenge) break;
      return on_challenge(f);
    case State::kAwaitResponse:
      if (f.header.type != FrameType::kResponse) break;
      return on_response(f);
    case State::kAwaitAuthOk:
      if (f.header.type != FrameType::kAuthOk) break;
      if (!f.payload.empty()) return fail(HandshakeOutcome::kMalformed, "auth-ok with a payload");
      state_ = State::kDone;
      return HandshakeStep{HandshakeOutcome::kDone, {}, {}};
    default:
      TALLY_UNREACHABLE();
  }
  return fail(HandshakeOutcome::kMalformed, std::string("unexpected ") + frame_type_name(f.header.type) + " frame");
}

HandshakeStep Handshake::on_hello(const Frame& f) {
  TALLY_ASSERT(role_ == Role::kAcceptor);
  const std::string_view p = f.payload;
  if (p.size() < kNonceBytes + 1) return fail(HandshakeOutcome::kMalformed, "short hello");
  const size_t id_bytes = static_cast<uint8_t>(p[kNonceBytes]);
  if (id_bytes == 0 || id_bytes > kClusterIdBytesMax || p.size() != kNonceBytes + 1 + id_bytes) {
    return fail(HandshakeOutcome::kMalformed, "bad cluster id length in hello");
  }
  const uint64_t from = f.header.source;
  if (from == config_.self || !config_.is_peer(from)) {
    return fail(HandshakeOutcome::kRefused, "node " + std::to_string(from) + " is not a configured peer");
  }
  if (p.substr(kNonceBytes + 1) != config_.cluster_id) return fail(HandshakeOutcome::kRefused, "another cluster id");
  std::memcpy(nonce_peer_.data(), p.data(), kNonceBytes);
  if (!random_(nonce_self_.data(), kNonceBytes)) return fail(HandshakeOutcome::kRefused, "no random bytes for a nonce");
  peer_ = from;
  const Proof mine = compute_proof(config_.secret, config_.cluster_id, nonce_peer_, nonce_self_, peer_, config_.self,
                                   ProofDirection::kAcceptor);
  HandshakeFrame challenge{FrameType::kChallenge, {}};
  challenge.payload.append(reinterpret_cast<const char*>(nonce_self_.data()), kNonceBytes);
  challenge.payload.append(reinterpret_cast<const char*>(mine.data()), kProofBytes);
  state_ = State::kAwaitResponse;
  HandshakeStep step;
  step.out.push_back(std::move(challenge));
  return step;
}

HandshakeStep Handshake::on_challenge(const Frame& f) {
  TALLY_ASSERT(role_ == Role::kDialer);
  if (f.payload.size() != kNonceBytes + kProofBytes) return fail(HandshakeOutcome::kMalformed, "bad challenge size");
  std::memcpy(nonce_peer_.data(), f.payload.data(), kNonceBytes);
  const Proof expected = compute_proof(config_.secret, config_.cluster_id, nonce_self_, nonce_peer_, config_.self,
                                       peer_, ProofDirection::kAcceptor);
  if (!proofs_equal(expected, f.payload.substr(kNonceBytes))) {
    return fail(HandshakeOutcome::kRefused, "the acceptor's proof is wrong");
  }
  const Proof mine = compute_proof(config_.secret, config_.cluster_id, nonce_self_, nonce_peer_, config_.self, peer_,
                                   ProofDirection::kDialer);
  state_ = State::kAwaitAuthOk;
  HandshakeStep step;
  step.out.push_back(HandshakeFrame{FrameType::kResponse,
                                    std::string(reinterpret_cast<const char*>(mine.data()), kProofBytes)});
  return step;
}

HandshakeStep Handshake::on_response(const Frame& f) {
  TALLY_ASSERT(role_ == Role::kAcceptor && peer_ != 0);
  if (f.payload.size() != kProofBytes) return fail(HandshakeOutcome::kMalformed, "bad response size");
  const Proof expected = compute_proof(config_.secret, config_.cluster_id, nonce_peer_, nonce_self_, peer_,
                                       config_.self, ProofDirection::kDialer);
  if (!proofs_equal(expected, f.payload)) return fail(HandshakeOutcome::kRefused, "the dialer's proof is wrong");
  state_ = State::kDone;
  HandshakeStep step;
  step.outcome = HandshakeOutcome::kDone;
  step.out.push_back(HandshakeFrame{FrameType::kAuthOk, {}});
  return step;
}

}  // namespace tally::transport
