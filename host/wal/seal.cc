// Sealing a batch of records: ranges built once, the ChecksumFn called per window (one in practice),
// payloads longer than one range combined from their pieces.
#include "host/wal/seal.h"

#include <algorithm>

#include "host/common/log.h"
#include "host/wal/record.h"
#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/reference.h"

namespace tally::wal {

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  // The standard CRC is linear up to its inversions, which cancel between the three terms.
  return kernels::crc32c_math::shift(crc_a, bytes_b, kernels::crc32c_math::kPowers.data()) ^ crc_b;
}

uint32_t crc32c_any(const char* data, uint64_t bytes) {
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  uint32_t crc = kernels::crc32c(p, std::min<uint64_t>(bytes, kernels::kChecksumItemBytesMax));
  for (uint64_t done = std::min<uint64_t>(bytes, kernels::kChecksumItemBytesMax); done < bytes;) {
    const uint64_t n = std::min<uint64_t>(bytes - done, kernels::kChecksumItemBytesMax);
    crc = crc32c_combine(crc, kernels::crc32c(p + done, n), n);
    done += n;
  }
  return crc;
}

uint32_t Sealer::seal(const ChecksumFn& fn, char* buf, uint64_t bytes, const std::vector<uint64_t>& starts,
                      const SealLimits& limits) {
  TALLY_ASSERT(limits.range_bytes_max > 0 && limits.range_bytes_max <= limits.blob_bytes_max);
  TALLY_ASSERT(limits.items_max >= 1);
  offsets_.clear();
  lengths_.clear();
  // Pieces in ascending offset order: each record's header range, then its payload in range-sized pieces.
  for (uint64_t start : starts) {
    TALLY_ASSERT(start % kRecordAlignBytes == 0 && start + kRecordHeaderBytes <= bytes);
    const uint32_t payload_bytes = record_payload_bytes(buf + start);
    TALLY_ASSERT(start + record_bytes(payload_bytes) <= bytes);
    offsets_.push_back(start + kRecordHeaderCrcFrom);
    lengths_.push_back(kRecordHeaderCrcBytes);
    uint64_t done = 0;
    do {
      const uint64_t n = std::min<uint64_t>(payload_bytes - done, limits.range_bytes_max);
      offsets_.push_back(start + kRecordHeaderBytes + done);
      lengths_.push_back(static_cast<uint32_t>(n));
      done += n;
    } while (done < payload_bytes);
  }
  crcs_.assign(offsets_.size(), 0);

  uint32_t calls = 0;
  for (size_t i = 0; i < offsets_.size();) {
    // A window: as many pieces as the blob and item bounds allow, the blob starting at its first piece.
    const uint64_t base = offsets_[i];
    uint64_t end = base + lengths_[i];
    size_t j = i + 1;
    while (j < offsets_.size() && j - i < limits.items_max &&
           std::max(end, offsets_[j] + lengths_[j]) - base <= limits.blob_bytes_max) {
      end = std::max(end, offsets_[j] + lengths_[j]);
      ++j;
    }
    window_offsets_.resize(j - i);
    for (size_t k = i; k < j; ++k) window_offsets_[k - i] = offsets_[k] - base;
    kernels::ChecksumBatch batch;
    batch.blob = reinterpret_cast<const uint8_t*>(buf + base);
    batch.blob_bytes = end - base;
    batch.offsets = window_offsets_.data();
    batch.lengths = lengths_.data() + i;
    batch.items = static_cast<uint32_t>(j - i);
    batch.crc_out = crcs_.data() + i;
    ++calls;
    if (Status st = fn(batch); !st.is_ok()) {
      TALLY_LOG_WARN("wal: checksum batch failed ({}), computed on the CPU", st.to_string());
      ++fallbacks_;
      const Status cpu = kernels::checksum_cpu_checked(batch);
      TALLY_ASSERT_MSG(cpu.is_ok(), "wal: the checksum batch it built is malformed");
    }
    i = j;
  }

  size_t piece = 0;
  for (uint64_t start : starts) {
    const uint32_t header_crc = crcs_[piece++];
    const uint32_t payload_bytes = record_payload_bytes(buf + start);
    uint32_t payload_crc = crcs_[piece];
    uint64_t done = lengths_[piece++];
    while (done < payload_bytes) {
      payload_crc = crc32c_combine(payload_crc, crcs_[piece], lengths_[piece]);
      done += lengths_[piece++];
    }
    seal_record(buf + start, header_crc, payload_crc);
  }
  TALLY_ASSERT(piece == offsets_.size());
  return calls;
}

}  // namespace tally::wal
