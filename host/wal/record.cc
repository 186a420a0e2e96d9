// Records and segment headers to and from bytes (docs/wal-format.md): little-endian fields, CRC32C.
#include "host/wal/record.h"

#include <cstring>

#include "host/wal/seal.h"
#include "kernels/cpu/reference.h"

namespace tally::wal {

namespace {

constexpr char kMagic[8] = {'T', 'A', 'L', 'L', 'Y', 'W', 'A', 'L'};
constexpr uint32_t kSegmentHeaderCrcAt = 60;

// Offsets of the record header's fields.
constexpr size_t kHeaderCrcAt = 0;
constexpr size_t kPayloadCrcAt = 4;
constexpr size_t kLengthAt = 8;
constexpr size_t kTypeAt = 12;
constexpr size_t kEntryTypeAt = 13;
constexpr size_t kGroupAt = 16;
constexpr size_t kTermAt = 24;
constexpr size_t kIndexAt = 32;
constexpr size_t kSegmentAt = 40;

void put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
bool all_zero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace

void encode_record(const RecordHeader& h, uint64_t segment_seq, std::string_view payload, std::string& out) {
  TALLY_ASSERT(payload.size() <= kPayloadBytesMax);
  TALLY_ASSERT(h.type == RecordType::kEntry || h.type == RecordType::kHardState);
  TALLY_ASSERT(h.type == RecordType::kEntry ? h.entry_type <= kEntryTypeMax : h.entry_type == 0);
  const size_t at = out.size();
  TALLY_ASSERT(at % kRecordAlignBytes == 0);
  out.resize(at + record_bytes(payload.size()), '\0');
  char* p = out.data() + at;
  put32(p + kLengthAt, static_cast<uint32_t>(payload.size()));
  p[kTypeAt] = static_cast<char>(h.type);
  p[kEntryTypeAt] = static_cast<char>(h.entry_type);
  put32(p + kGroupAt, h.group);
  put64(p + kTermAt, h.term);
  put64(p + kIndexAt, h.index);
  put64(p + kSegmentAt, segment_seq);
  if (!payload.empty()) std::memcpy(p + kRecordHeaderBytes, payload.data(), payload.size());
}

void set_record_segment(char* record, uint64_t segment_seq) { put64(record + kSegmentAt, segment_seq); }

void seal_record(char* record, uint32_t header_crc, uint32_t payload_crc) {
  put32(record + kHeaderCrcAt, header_crc);
  put32(record + kPayloadCrcAt, payload_crc);
}

void seal_record_cpu(char* record) {
  const uint32_t n = get32(record + kLengthAt);
  seal_record(record, record_header_crc(record), crc32c_any(record + kRecordHeaderBytes, n));
}

RecordHeader RecordFrame::header() const {
  RecordHeader h;
  h.type = static_cast<RecordType>(type);
  h.entry_type = entry_type;
  h.group = group;
  h.term = term;
  h.index = index;
  return h;
}

uint32_t record_payload_bytes(const char* record) { return get32(record + kLengthAt); }

RecordFrame decode_record_frame(const char* record) {
  RecordFrame f;
  f.header_crc = get32(record + kHeaderCrcAt);
  f.payload_crc = get32(record + kPayloadCrcAt);
  f.payload_bytes = get32(record + kLengthAt);
  f.type = static_cast<uint8_t>(record[kTypeAt]);
  f.entry_type = static_cast<uint8_t>(record[kEntryTypeAt]);
  f.reserved_zero = all_zero(record + 14, 2) && all_zero(record + 20, 4);
  f.group = get32(record + kGroupAt);
  f.term = get64(record + kTermAt);
  f.index = get64(record + kIndexAt);
  f.segment_seq = get64(record + kSegmentAt);
  return f;
}

uint32_t record_header_crc(const char* record) {
  return kernels::crc32c(reinterpret_cast<const uint8_t*>(record + kRecordHeaderCrcFrom), kRecordHeaderCrcBytes);
}

const char* record_header_problem(const RecordFrame& f, const char* record, uint64_t segment_seq, uint64_t bytes_left) {
  if (bytes_left < kRecordHeaderBytes) return "header past end of file";
  if (f.header_crc != record_header_crc(record)) return "header checksum";
  if (f.segment_seq != segment_seq) return "segment number differs";
  // A header whose checksum holds but whose fields no writer produces: not trusted either.
  if (!f.reserved_zero) return "reserved header bytes";
  if (f.type == static_cast<uint8_t>(RecordType::kEntry)) {
    if (f.entry_type > kEntryTypeMax) return "entry type";
  } else if (f.type == static_cast<uint8_t>(RecordType::kHardState)) {
    if (f.entry_type != 0) return "entry type";
  } else {
    return "record type";
  }
  if (f.payload_bytes > kPayloadBytesMax) return "payload length";
  if (record_bytes(f.payload_bytes) > bytes_left) return "length past end of file";
  return nullptr;
}

std::string encode_vote(uint64_t vote) {
  std::string s(kVoteBytes, '\0');
  put64(s.data(), vote);
  return s;
}

Result<uint64_t> decode_vote(std::string_view payload) {
  if (payload.size() != kVoteBytes) return Status::corruption("hard state: vote of " + std::to_string(payload.size()) + " bytes");
  return get64(payload.data());
}

std::string encode_segment_header(uint32_t shard, uint64_t seq) {
  std::string s(kSegmentHeaderBytes, '\0');
  std::memcpy(s.data(), kMagic, sizeof kMagic);
  put32(s.data() + 8, kFormatVersion);
  put32(s.data() + 12, shard);
  put64(s.data() + 16, seq);
  put32(s.data() + kSegmentHeaderCrcAt,
        kernels::crc32c(reinterpret_cast<const uint8_t*>(s.data()), kSegmentHeaderCrcAt));
  return s;
}

Result<SegmentHeader> decode_segment_header(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderBytes) return Status::corruption("segment header: short file");
  const char* p = bytes.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return Status::corruption("segment header: magic");
  if (get32(p + kSegmentHeaderCrcAt) != kernels::crc32c(reinterpret_cast<const uint8_t*>(p), kSegmentHeaderCrcAt)) {
    return Status::corruption("segment header: checksum");
  }
  if (get32(p + 8) != kFormatVersion) return Status::corruption("segment header: version " + std::to_string(get32(p + 8)));
  if (!all_zero(p + 24, 36)) return Status::corruption("segment header: reserved bytes");
  SegmentHeader h;
  h.shard = get32(p + 12);
  h.seq = get64(p + 16);
  return h;
}

}  // namespace tally::wal
