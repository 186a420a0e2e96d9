// The peer frame of docs/peer-protocol.md: a 40-byte header (magic, version, type, flags, length,
// group, source, destination, header CRC, frame CRC) and a payload; encoding and an incremental decoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally::transport {

inline constexpr uint32_t kFrameMagic = 0x50594C54u;  // "TLYP" as little-endian bytes
inline constexpr uint8_t kFrameVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 40;
inline constexpr size_t kHeaderCrcCoveredBytes = 32;  // the header CRC covers bytes [0, 32)
inline constexpr uint32_t kNoGroup = 0xFFFFFFFFu;     // frames that belong to the node, not a group
inline constexpr uint32_t kHandshakePayloadBytesMax = 256;  // the bound before authentication
inline constexpr uint32_t kFrameBytesMaxMin = 64u << 10;    // accepted range of peer_frame_bytes_max
inline constexpr uint32_t kFrameBytesMaxMax = 256u << 20;
inline constexpr size_t kCloseReasonBytesMax = 200;

enum class FrameType : uint8_t {
  kHello = 1,
  kChallenge = 2,
  kResponse = 3,
  kAuthOk = 4,
  kRaft = 16,
  kHeartbeat = 17,
  kClose = 18,
  kPublish = 19,  // a PUBLISH for the other members' subscribers (node-level, no group)
  kForward = 20,       // a client's command for a partition the receiver leads (node-level)
  kForwardReply = 21,  // the answer to a kForward (node-level)
};

const char* frame_type_name(FrameType t);
bool is_handshake_type(FrameType t);

enum class CloseReason : uint16_t {
  kShutdown = 1,
  kAuthFailed = 2,
  kProtocol = 3,
  kChecksum = 4,
  kUnknownGroup = 5,
  kTooLarge = 6,
  kReplaced = 7,
  kHandshakeTimeout = 8,
};

// Why a stream of frames cannot be trusted any more; each maps to one counter.
enum class FrameFault : uint8_t { kNone, kMalformed, kChecksum, kOversize };
const char* frame_fault_name(FrameFault f);

struct FrameHeader {
  FrameType type = FrameType::kRaft;
  uint16_t flags = 0;
  uint32_t payload_bytes = 0;
  uint32_t group = kNoGroup;
  uint64_t source = 0;
  uint64_t destination = 0;
  uint32_t header_crc = 0;
  uint32_t frame_crc = 0;
};

// A decoded frame; payload points into the decoder's buffer.
struct Frame {
  FrameHeader header;
  std::string_view payload;
};

// Writes the header's fields (CRCs as given) into out[0, kFrameHeaderBytes).
void put_header(char* out, const FrameHeader& h);
// Reads a header without judging it.
FrameHeader get_header(const char* in);
// Checks everything a header alone can show (magic, version, flags, type, ids, group rule, header CRC,
// the bound); kNone when the payload may be awaited.
FrameFault check_header(const char* in, uint32_t payload_bytes_max);

// Appends one frame with zeroed CRCs to out and returns where it starts; FrameSealer fills the CRCs.
size_t append_unsealed_frame(std::string& out, FrameType type, uint32_t group, uint64_t source,
                             uint64_t destination, std::string_view payload);
// One sealed frame, checksummed on the CPU (handshake frames, tests).
std::string encode_frame(FrameType type, uint32_t group, uint64_t source, uint64_t destination,
                         std::string_view payload);

// Splits a byte stream into frames. The buffer holds at most one frame's bytes plus one appended
// chunk: a header naming a payload over the bound is refused before any of it is awaited. Payload
// CRCs are not checked here (FrameVerifier does that, one batch per read); header CRCs are.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t payload_bytes_max);
  void set_payload_bytes_max(uint32_t bytes);  // raised once a connection is authenticated
  void append(std::string_view bytes);
  // The next complete frame, or nullopt when more bytes are needed; frames stay valid until compact().
  // After a fault the decoder stays faulted and returns it again.
  FrameFault next(std::optional<Frame>& frame);
  void compact();  // drops the frames handed out so far
  size_t buffered_bytes() const { return buf_.size() - read_at_; }

 private:
  std::string buf_;
  size_t read_at_ = 0;
  uint32_t payload_bytes_max_;
  FrameFault fault_ = FrameFault::kNone;
};

}  // namespace tally::transport
