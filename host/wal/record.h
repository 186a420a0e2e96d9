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
inline constexpr uint32_t kRecordAlignBytes = 8;
// The header CRC covers bytes [8, 48) of a record: length, types, group, term, index, segment number.
inline constexpr uint32_t kRecordHeaderCrcFrom = 8;
inline constexpr uint32_t kRecordHeaderCrcBytes = kRecordHeaderBytes - kRecordHeaderCrcFrom;
inline constexpr uint32_t kVoteBytes = 8;
inline constexpr uint8_t kEntryTypeMax = 2;  // membership change

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

// Appends the record's bytes to `out` with both CRC fields zero; seal_record() fills them in.
void encode_record(const RecordHeader& h, uint64_t segment_seq, std::string_view payload, std::string& out);
// Overwrites the segment number of the encoded record at `record` (its CRCs must be computed after).
void set_record_segment(char* record, uint64_t segment_seq);
// Writes both CRC fields of the encoded record at `record`.
void seal_record(char* record, uint32_t header_crc, uint32_t payload_crc);
// Computes both CRCs on the calling thread and seals: tools and tests (the Log batches them).
void seal_record_cpu(char* record);

// The first 48 bytes of a record as written, unchecked.
struct RecordFrame {
  uint32_t header_crc = 0;
  uint32_t payload_crc = 0;
  uint32_t payload_bytes = 0;
  uint8_t type = 0;
  uint8_t entry_type = 0;
  bool reserved_zero = true;  // bytes 14..16 and 20..24 are zero
  uint32_t group = 0;
  uint64_t term = 0;
  uint64_t index = 0;
  uint64_t segment_seq = 0;
  RecordHeader header() const;
};
RecordFrame decode_record_frame(const char* record);
// The payload length alone (the writer's hot path needs nothing else of a frame it just built).
uint32_t record_payload_bytes(const char* record);
// CRC32C of bytes [8, 48) of the record at `record`.
uint32_t record_header_crc(const char* record);
// nullptr when the frame's header checks pass for segment `segment_seq` with `bytes_left` bytes from
// the record's start to the end of the file; otherwise what is wrong ("header checksum", ...). The
// payload is not looked at.
const char* record_header_problem(const RecordFrame& f, const char* record, uint64_t segment_seq, uint64_t bytes_left);

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
