#include "host/transport/frame.h"

#include <bit>
#include <cstring>

#include "host/common/assert.h"
#include "host/transport/frame_checksum.h"
#include "kernels/cpu/reference.h"

namespace tally::transport {

namespace {

constexpr size_t kKeepBufferBytes = 1u << 20;  // a decoder buffer larger than this shrinks when empty

void put16(char* p, uint16_t v) { std::memcpy(p, &v, 2); }
void put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint16_t get16(const char* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
uint32_t get32(const char* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
uint64_t get64(const char* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

bool known_type(uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kHello:
    case FrameType::kChallenge:
    case FrameType::kResponse:
    case FrameType::kAuthOk:
    case FrameType::kRaft:
    case FrameType::kHeartbeat:
    case FrameType::kClose:
    case FrameType::kPublish:
    case FrameType::kForward:
    case FrameType::kForwardReply:
      return true;
  }
  return false;
}

}  // namespace

static_assert(std::endian::native == std::endian::little, "the frame codec assumes a little-endian host");

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "hello";
    case FrameType::kChallenge: return "challenge";
    case FrameType::kResponse: return "response";
    case FrameType::kAuthOk: return "auth-ok";
    case FrameType::kRaft: return "raft";
    case FrameType::kHeartbeat: return "heartbeat";
    case FrameType::kClose: return "close";
    case FrameType::kPublish: return "publish";
    case FrameType::kForward: return "forward";
    case FrameType::kForwardReply: return "forward-reply";
  }
  return "unknown";
}

bool is_handshake_type(FrameType t) {
  return t == FrameType::kHello || t == FrameType::kChallenge || t == FrameType::kResponse ||
         t == FrameType::kAuthOk;
}

const char* frame_fault_name(FrameFault f) {
  switch (f) {
    case FrameFault::kNone: return "none";
    case FrameFault::kMalformed: return "malformed";
    case FrameFault::kChecksum: return "checksum";
    case FrameFault::kOversize: return "oversize";
  }
  TALLY_UNREACHABLE();
}

void put_header(char* out, const FrameHeader& h) {
  TALLY_ASSERT(out != nullptr);
  put32(out + 0, kFrameMagic);
  out[4] = static_cast<char>(kFrameVersion);
  out[5] = static_cast<char>(h.type);
  put16(out + 6, h.flags);
  put32(out + 8, h.payload_bytes);
  put32(out + 12, h.group);
  put64(out + 16, h.source);
  put64(out + 24, h.destination);
  put32(out + 32, h.header_crc);
  put32(out + 36, h.frame_crc);
}

FrameHeader get_header(const char* in) {
  TALLY_ASSERT(in != nullptr);
  FrameHeader h;
  h.type = static_cast<FrameType>(static_cast<uint8_t>(in[5]));
  h.flags = get16(in + 6);
  h.payload_bytes = get32(in + 8);
  h.group = get32(in + 12);
  h.source = get64(in + 16);
  h.destination = get64(in + 24);
  h.header_crc = get32(in + 32);
  h.frame_crc = get32(in + 36);
  return h;
}

FrameFault check_header(const char* in, uint32_t payload_bytes_max) {
  TALLY_ASSERT(in != nullptr);
  // The CRC first: any other field of a damaged header could be anything.
  if (kernels::crc32c(reinterpret_cast<const uint8_t*>(in), kHeaderCrcCoveredBytes) != get32(in + 32)) {
    return FrameFault::kChecksum;
  }
  if (get32(in) != kFrameMagic || static_cast<uint8_t>(in[4]) != kFrameVersion) return FrameFault::kMalformed;
  const FrameHeader h = get_header(in);
  if (!known_type(static_cast<uint8_t>(h.type)) || h.flags != 0) return FrameFault::kMalformed;
  if (h.source == 0 || h.destination == 0 || h.source == h.destination) return FrameFault::kMalformed;
  // Raft frames name a group; every other frame belongs to the node.
  if ((h.type == FrameType::kRaft) == (h.group == kNoGroup)) return FrameFault::kMalformed;
  if (h.payload_bytes > payload_bytes_max) return FrameFault::kOversize;
  return FrameFault::kNone;
}

size_t append_unsealed_frame(std::string& out, FrameType type, uint32_t group, uint64_t source,
                             uint64_t destination, std::string_view payload) {
  TALLY_ASSERT(payload.size() <= kFrameBytesMaxMax);
  TALLY_ASSERT(source != 0 && destination != 0);
  const size_t at = out.size();
  FrameHeader h;
  h.type = type;
  h.payload_bytes = static_cast<uint32_t>(payload.size());
  h.group = group;
  h.source = source;
  h.destination = destination;
  out.resize(at + kFrameHeaderBytes);
  put_header(out.data() + at, h);
  out.append(payload);
  return at;
}

std::string encode_frame(FrameType type, uint32_t group, uint64_t source, uint64_t destination,
                         std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  FrameSealer sealer;
  sealer.add(append_unsealed_frame(out, type, group, source, destination, payload));
  sealer.seal(cpu_checksum_fn(), out);
  TALLY_ASSERT(out.size() == kFrameHeaderBytes + payload.size());
  return out;
}

FrameDecoder::FrameDecoder(uint32_t payload_bytes_max) : payload_bytes_max_(payload_bytes_max) {
  TALLY_ASSERT(payload_bytes_max <= kFrameBytesMaxMax);
}

void FrameDecoder::set_payload_bytes_max(uint32_t bytes) {
  TALLY_ASSERT(bytes <= kFrameBytesMaxMax);
  payload_bytes_max_ = bytes;
}

void FrameDecoder::append(std::string_view bytes) {
  if (fault_ != FrameFault::kNone) return;  // nothing after a fault is looked at
  buf_.append(bytes);
}

FrameFault FrameDecoder::next(std::optional<Frame>& frame) {
  frame.reset();
  if (fault_ != FrameFault::kNone) return fault_;
  TALLY_ASSERT(read_at_ <= buf_.size());
  const size_t avail = buf_.size() - read_at_;
  if (avail < kFrameHeaderBytes) return FrameFault::kNone;
  const char* p = buf_.data() + read_at_;
  fault_ = check_header(p, payload_bytes_max_);
  if (fault_ != FrameFault::kNone) return fault_;
  const FrameHeader h = get_header(p);
  // Not reserved ahead: frames handed out before compact() point into buf_. What is awaited is the
  // rest of this frame, which fits the bound just checked.
  if (avail < kFrameHeaderBytes + h.payload_bytes) return FrameFault::kNone;
  frame = Frame{h, std::string_view(p + kFrameHeaderBytes, h.payload_bytes)};
  read_at_ += kFrameHeaderBytes + h.payload_bytes;
  return FrameFault::kNone;
}

void FrameDecoder::compact() {
  TALLY_ASSERT(read_at_ <= buf_.size());
  if (read_at_ == 0) return;
  buf_.erase(0, read_at_);
  read_at_ = 0;
  if (buf_.empty() && buf_.capacity() > kKeepBufferBytes) std::string().swap(buf_);
}

}  // namespace tally::transport
