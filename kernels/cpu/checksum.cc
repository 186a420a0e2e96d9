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
  const uint8_t* const blob = b.blob;
  const uint64_t* const offsets = b.offsets;
  const uint32_t* const lengths = b.lengths;
  uint32_t* const crc_out = b.crc_out;
  for (uint32_t i = first; i < last; ++i) crc_out[i] = crc32c(blob + offsets[i], lengths[i]);
}

Status checksum_cpu_checked(const ChecksumBatch& b) {
  if (b.items > kBatchItemsMax || b.blob_bytes > kBatchBlobBytesMax) return Status::invalid("checksum: batch too large");
  if (b.items > 0 && (b.offsets == nullptr || b.lengths == nullptr || b.crc_out == nullptr)) {
    return Status::invalid("checksum: missing arrays");
  }
  if (b.blob == nullptr && b.blob_bytes > 0) return Status::invalid("checksum: missing blob");
  // Locals, not b's fields: the stores to crc_out could alias the batch descriptor as far as the
  // compiler knows, which would reload every field on every item.
  const uint8_t* const blob = b.blob;
  const uint64_t blob_bytes = b.blob_bytes;
  const uint64_t* const offsets = b.offsets;
  const uint32_t* const lengths = b.lengths;
  uint32_t* const crc_out = b.crc_out;
  const uint32_t items = b.items;
  // One pass, checked as it goes: a separate validation pass costs about as much as the CRC of a
  // 64-byte item. The three tests are or-ed into one well-predicted branch; off <= blob_bytes and
  // len <= the item bound keep off + len from overflowing.
  for (uint32_t i = 0; i < items; ++i) {
    const uint64_t off = offsets[i];
    const uint64_t len = lengths[i];
    if ((len > kChecksumItemBytesMax) | (off > blob_bytes) | (off + len > blob_bytes)) [[unlikely]] {
      return Status::invalid("checksum: range " + std::to_string(i) + " outside the blob");
    }
    crc_out[i] = ~crc32_iscsi(const_cast<uint8_t*>(blob + off), static_cast<int>(len), 0xffffffffu);
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
