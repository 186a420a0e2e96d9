// checksum and partition references: ISA-L's hardware CRC32C and the shared CRC16 slot function.
#include <isa-l/crc.h>

#include <xxhash.h>

#include <string>

#include "kernels/cpu/reference.h"
#include "kernels/cpu/slot.h"

namespace tally::kernels {

uint32_t crc32c(const uint8_t* data, uint64_t bytes) {
  TALLY_ASSERT(data != nullptr || bytes == 0);
  TALLY_ASSERT(bytes <= kChecksumItemBytesMax);
  // ISA-L's crc32_iscsi neither inverts the seed nor the result: seeding with ~0 and inverting the
  // return value gives the standard CRC32C (iSCSI, ext4, RFC 3720).
  return ~crc32_iscsi(const_cast<uint8_t*>(data), static_cast<int>(bytes), 0xffffffffu);
}

uint64_t key_hash(std::string_view key) {
  TALLY_ASSERT(key.size() <= kKeyBytesMax);
  return XXH3_64bits(key.data(), key.size());
}

void checksum_cpu(const ChecksumBatch& b, uint32_t first, uint32_t last) {
  TALLY_ASSERT(first <= last && last <= b.items);
  TALLY_ASSERT(b.crc_out != nullptr || b.items == 0);
  for (uint32_t i = first; i < last; ++i) {
    b.crc_out[i] = crc32c(b.blob + b.offsets[i], b.lengths[i]);
  }
}

Status checksum_cpu_checked(const ChecksumBatch& b) {
  if (b.items > kBatchItemsMax || b.blob_bytes > kBatchBlobBytesMax) return Status::invalid("checksum: batch too large");
  if (b.items > 0 && (b.offsets == nullptr || b.lengths == nullptr || b.crc_out == nullptr)) {
    return Status::invalid("checksum: missing arrays");
  }
  if (b.blob == nullptr && b.blob_bytes > 0) return Status::invalid("checksum: missing blob");
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint64_t off = b.offsets[i];
    const uint32_t len = b.lengths[i];
    if (len > kChecksumItemBytesMax || off > b.blob_bytes || b.blob_bytes - off < len) {
      return Status::invalid("checksum: range " + std::to_string(i) + " outside the blob");
    }
    b.crc_out[i] = ~crc32_iscsi(const_cast<uint8_t*>(b.blob + off), static_cast<int>(len), 0xffffffffu);
  }
  return Status::ok();
}

void partition_cpu(const PartitionBatch& b, uint32_t first, uint32_t last) {
  TALLY_ASSERT(first <= last && last <= b.items);
  TALLY_ASSERT(b.slot_to_partition != nullptr);
  for (uint32_t i = first; i < last; ++i) {
    const std::string_view key(reinterpret_cast<const char*>(b.blob) + b.offsets[i], b.lengths[i]);
    const uint32_t slot = key_slot(key);
    b.slot_out[i] = static_cast<uint16_t>(slot);
    b.partition_out[i] = b.slot_to_partition[slot];
  }
}

}  // namespace tally::kernels
