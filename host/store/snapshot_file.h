// Snapshot files of one partition (docs/snapshot-format.md): header, CRC-framed chunks and footer, a
// reader that checks all of it, and synchronous write and load of a whole Store through an Env.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/store/store.h"
#include "kernels/cpu/formats.h"

namespace tally::store {

inline constexpr uint32_t kSnapshotFormatVersion = 1;
inline constexpr uint32_t kMembershipBytesMax = 64 << 10;
inline constexpr size_t kSnapshotHeaderFixedBytes = 60;  // the header before its membership bytes
inline constexpr size_t kSnapshotCrcBytes = 4;
inline constexpr size_t kChunkFrameBytes = 8;  // body length, body CRC
inline constexpr uint64_t kChunkBytesMax = uint64_t{1} << 31;
inline constexpr size_t kSnapshotFooterBytes = 36;
inline constexpr uint32_t kEndOfChunks = 0xffffffffu;  // in a chunk's length field: the footer
inline constexpr size_t kSyncSliceBytes = 1 << 20;     // write_snapshot_sync's slice and write size

struct SnapshotMeta {
  uint32_t partition = 0;
  uint32_t first_slot = 0;
  uint32_t last_slot = 0;  // inclusive
  uint64_t index = 0;      // Raft index and term of the last entry the snapshot holds
  uint64_t term = 0;
  std::string membership;  // opaque to the store: the shell's Raft configuration at `index`
  uint64_t taken_at_ms = 0;
  uint64_t cas_counter = 0;  // the store's when the image began (ImageWriter::cas_counter)
  bool operator==(const SnapshotMeta&) const = default;
};

// What a reader found after the header.
struct SnapshotCounts {
  uint64_t entries = 0;
  uint64_t chunks = 0;
  uint64_t file_bytes = 0;
};

// Computes the CRC32C of each range of a batch: the shell passes the offload engine's, so chunk
// checksums run as offload batches; by default, the CPU reference (kernels::checksum_cpu_checked).
using ChecksumFn = std::function<Status(kernels::ChecksumBatch&)>;

std::string snapshot_dir(std::string_view dir, uint32_t partition);  // <dir>/snap/p-PPPPP
std::string snapshot_file_name(uint64_t index, uint64_t term);       // IIII…-TTTT….snap
bool parse_snapshot_file_name(std::string_view name, uint64_t& index, uint64_t& term);

// Produces a snapshot's bytes in file order: header(), then chunks (open_chunk, the image's step
// appending the body, seal), then footer(). Chunks must be sealed in file order.
class SnapshotWriter {
 public:
  explicit SnapshotWriter(SnapshotMeta meta, ChecksumFn checksum = {});

  void header(std::string& out);
  // Appends a chunk frame to fill later; the chunk's body is what is appended to buf after it.
  static size_t open_chunk(std::string& buf);
  // Fills in the frames of the chunks opened at `starts` (ascending; a body runs to the next start,
  // the last one to the end of buf), the CRCs through the checksum function in as few batches as its
  // bounds allow. Empty bodies are dropped with their frames (later bytes move up).
  Status seal_chunks(std::string& buf, const std::vector<size_t>& starts);
  Status seal_chunk(std::string& buf, size_t start) { return seal_chunks(buf, {start}); }
  // `entries`: ImageWriter::entries() once the image is complete.
  void footer(uint64_t entries, std::string& out);
  uint64_t chunks() const { return chunks_; }

 private:
  SnapshotMeta meta_;
  ChecksumFn checksum_;
  uint32_t chain_ = 0xffffffffu;  // CRC register over the header CRC and the chunk CRCs so far
  uint64_t chunks_ = 0;
  bool header_done_ = false;
  bool footer_done_ = false;
};

// Reads a snapshot file and checks everything in it (docs/snapshot-format.md, "Reading"). Errors:
// kOutOfRange truncated, kCorruption damaged, kUnimplemented another format version, kIoError.
class SnapshotReader {
 public:
  SnapshotReader(File& file, std::string name);  // name: for messages

  // Checks the header and that the file ends in a footer; a file without one is refused here, before
  // any chunk is handed on. Call once; next() only after it succeeded.
  Status open();
  const SnapshotMeta& meta() const { return meta_; }
  // The footer's entry count: bounded by the file's size, confirmed only when next() returns false.
  uint64_t entries_claimed() const { return claimed_entries_; }
  // The next chunk's body, checked (valid until the next call); false once the footer has been
  // checked against every chunk.
  Result<bool> next(std::string_view& body);
  uint64_t chunk_offset() const { return chunk_at_; }  // of the last chunk next() returned
  SnapshotCounts counts() const { return {entries_, chunks_, size_}; }

 private:
  Status truncated(const std::string& why) const;
  Status corrupt(const std::string& why) const;
  Status read(uint64_t offset, size_t n, std::string& into);
  Status refuse_without_footer();
  Status check_footer();

  File& file_;
  std::string name_;
  SnapshotMeta meta_;
  uint64_t size_ = 0;
  uint64_t pos_ = 0;
  uint64_t chunks_end_ = 0;  // where the footer starts
  uint64_t chunk_at_ = 0;
  uint32_t chain_ = 0xffffffffu;
  uint64_t entries_ = 0;
  uint64_t chunks_ = 0;
  uint64_t claimed_entries_ = 0;
  uint64_t claimed_chunks_ = 0;
  std::string footer_;
  std::string body_;
  bool opened_ = false;
  bool done_ = false;
};

// Reads and checks a whole snapshot, calling fn with each chunk body once its CRC has passed. An
// error from fn ends the read with that error.
Result<SnapshotMeta> read_snapshot(File& file, const std::function<Status(std::string_view chunk_body)>& fn,
                                   SnapshotCounts* counts = nullptr);

// Writes an image of `store` to `path` at once (tests, tools): `<path>.tmp`, synced, renamed, the
// directory synced. meta.cas_counter is taken from the image.
Status write_snapshot_sync(Env& env, const std::string& path, SnapshotMeta meta, Store& store,
                           const ChecksumFn& checksum = {});

// Loads a snapshot into an empty store. On any error the store is left empty.
Result<SnapshotMeta> load_snapshot(Env& env, const std::string& path, Store& store);

}  // namespace tally::store
