// A batch's record checksums as one offload `checksum` batch (docs/wal-format.md, "Records"): two
// ranges per record, split only where a range or the batch exceeds the kernels' bounds.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::wal {

// Computes crc_out for every range of the batch (the offload engine's checksum op in tallyd,
// kernels::checksum_cpu in tests and tools).
using ChecksumFn = std::function<Status(kernels::ChecksumBatch&)>;

// CRC32C of A||B from CRC32C(A), CRC32C(B) and |B|.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);
// CRC32C of any number of bytes (kernels::crc32c takes at most kChecksumItemBytesMax at once).
uint32_t crc32c_any(const char* data, uint64_t bytes);

// The kernels' bounds; tests shrink them to exercise the splits.
struct SealLimits {
  uint64_t range_bytes_max = kernels::kChecksumItemBytesMax;
  uint64_t blob_bytes_max = kernels::kBatchBlobBytesMax;
  uint32_t items_max = kernels::kBatchItemsMax;
};

// Owns the batch's arrays between calls, so a steady stream of batches allocates nothing.
class Sealer {
 public:
  // Computes both CRCs of each record starting at `starts` (ascending) in buf[0, bytes) and writes
  // them into the records. `fn` runs once unless the limits force more calls; a call that fails
  // (an offload device gone bad) is answered by the CPU reference instead. Returns the calls of `fn`.
  uint32_t seal(const ChecksumFn& fn, char* buf, uint64_t bytes, const std::vector<uint64_t>& starts,
                const SealLimits& limits = {});
  uint64_t fallbacks() const { return fallbacks_; }

 private:
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> crcs_;
  std::vector<uint64_t> window_offsets_;
  uint64_t fallbacks_ = 0;
};

}  // namespace tally::wal
