// The peer handshake of docs/peer-protocol.md as a pure state machine: frames in, frames to send
// out, no sockets or clocks. Each side proves it knows the cluster secret with an HMAC-SHA256 bound
// to both connection nonces, both node ids, the cluster id and its direction.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"
#include "host/transport/frame.h"

namespace tally::transport {

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kProofBytes = 32;
inline constexpr size_t kSecretBytesMin = 16;
inline constexpr size_t kClusterIdBytesMax = 64;
inline constexpr std::string_view kAuthLabel = "tally-peer-auth-v1";

using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;

// Fills the buffer with fresh random bytes; false on failure. The default is OpenSSL's RAND_bytes.
using RandomFn = std::function<bool(uint8_t* out, size_t bytes)>;
const RandomFn& openssl_random_fn();

enum class ProofDirection : uint8_t { kDialer = 1, kAcceptor = 2 };

// HMAC-SHA256(secret, label || L || cluster id || nonce_dialer || nonce_acceptor || dialer || acceptor || dir).
Proof compute_proof(std::string_view secret, std::string_view cluster_id, const Nonce& nonce_dialer,
                    const Nonce& nonce_acceptor, uint64_t dialer, uint64_t acceptor, ProofDirection dir);

struct HandshakeConfig {
  uint64_t self = 0;
  std::string cluster_id;
  std::string secret;
  // Acceptor: whether a node id may connect (a configured peer). Dialers know whom they dialed.
  std::function<bool(uint64_t node)> is_peer;
};

Status validate(const HandshakeConfig& c);

// A frame for the caller to encode (source self, destination peer(), no group) and send.
struct HandshakeFrame {
  FrameType type;
  std::string payload;
};

enum class HandshakeOutcome : uint8_t {
  kContinue,   // send `out`, wait for the next frame
  kDone,       // send `out`; the peer is authenticated
  kRefused,    // an authentication failure: count it, send a close (reason 2), close
  kMalformed,  // not the handshake at all: count it, close at once
};

struct HandshakeStep {
  HandshakeOutcome outcome = HandshakeOutcome::kContinue;
  std::vector<HandshakeFrame> out;
  std::string why;  // for the log, when refused or malformed
};

// One connection's handshake. Not thread-safe; one per connection.
class Handshake {
 public:
  enum class Role : uint8_t { kDialer, kAcceptor };

  // `peer` is the node dialed (dialer) or 0 (acceptor: learnt from the hello).
  Handshake(HandshakeConfig config, Role role, uint64_t peer, RandomFn random);

  // Dialer: the hello to send first. kMalformed-free; fails only when no random bytes could be had.
  Result<HandshakeFrame> start();
  // The next frame from the peer, already checked by the decoder (CRCs, bound, ids non-zero).
  HandshakeStep on_frame(const Frame& frame);

  bool done() const { return state_ == State::kDone; }
  uint64_t peer() const { return peer_; }
  Role role() const { return role_; }

 private:
  enum class State : uint8_t { kIdle, kAwaitHello, kAwaitChallenge, kAwaitResponse, kAwaitAuthOk, kDone, kFailed };

  HandshakeStep fail(HandshakeOutcome outcome, std::string why);
  HandshakeStep on_hello(const Frame& f);
  HandshakeStep on_challenge(const Frame& f);
  HandshakeStep on_response(const Frame& f);

  const HandshakeConfig config_;  // a copy: a few short strings, and no lifetime to get wrong
  Role role_;
  uint64_t peer_;
  RandomFn random_;
  State state_;
  Nonce nonce_self_{};
  Nonce nonce_peer_{};
};

}  // namespace tally::transport
