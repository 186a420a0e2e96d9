// The WAL's on-disk units (docs/wal-format.md): segment headers and records. Encoding and decoding
// only; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "host/common/status.h"

namespace tally::wal {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kSegmentHeaderBytes = 64;
inline constexpr uint32_t kRecordHeaderBytes = 48;
inline constexpr uint64_t kSegmentBytesDefault = uint64_t{64} << 20;
inline constexpr uint64_t kSegmentBytesMin = uint64_t{64} << 10;
inline constexpr uint64_t kPayloadBytesMax = uint64_t{1} << 30;  // a 512 MB value plus its command

enum class RecordType : uint8_t { kEntry = 1, kHardState = 2 };

struct RecordHeader {
  RecordType type = RecordType::kEntry;
  uint8_t entry_type = 0;  // raft::EntryType for entries
  uint32_t group = 0;      // partition id
  uint64_t term = 0;
  uint64_t index = 0;      // entry index; hard state: commit index
  bool operator==(const RecordHeader&) const = default;
};

// Bytes a record with `payload_bytes` takes on disk (header, payload, padding to 8).
constexpr uint64_t record_bytes(uint64_t payload_bytes) {
  return kRecordHeaderBytes + ((payload_bytes + 7) & ~uint64_t{7});
}

// Appends the record's bytes to `out` with both CRC fields zero; seal() fills them in.
void encode_record(const RecordHeader& h, uint64_t segment_seq, std::string_view payload, std::string& out);

// Hard-state payload: the vote.
std::string encode_vote(uint64_t vote);
Result<uint64_t> decode_vote(std::string_view payload);

// The segment header for `shard` and `seq`.
std::string encode_segment_header(uint32_t shard, uint64_t seq);
struct SegmentHeader {
  uint32_t shard = 0;
  uint64_t seq = 0;
};
Result<SegmentHeader> decode_segment_header(std::string_view bytes);

}  // namespace tally::wal
