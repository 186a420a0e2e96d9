// Collects byte ranges (checksum inputs, partition keys) into one batch until a size, byte or age
// bound is reached; the batch's blob, offsets and outputs are owned here and allocated once.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::offload {

inline constexpr uint32_t kBatcherItemsMax = kernels::kBatchItemsMax;
inline constexpr uint64_t kBatcherBlobBytesMax = uint64_t{256} << 20;
inline constexpr uint64_t kBatcherLingerNsMax = 100'000'000;  // 100 ms: beyond this a batch is a stall

struct BatcherOptions {
  uint32_t items_max = 4096;        // flush at this many items
  uint64_t blob_bytes_max = 1 << 20;  // flush at this many bytes
  uint64_t linger_ns = 200'000;     // flush when the oldest item is this old
};

class RangeBatcher {
 public:
  // op is kChecksum or kPartition; slot_to_partition (kSlotCount entries) is needed for kPartition
  // and must outlive the batcher.
  RangeBatcher(kernels::Op op, BatcherOptions options, const uint32_t* slot_to_partition = nullptr);

  // Copies the range in and returns its item index in the current batch. kResourceExhausted when the
  // batch is full (flush first); kInvalidArgument when the range alone exceeds the bounds.
  Result<uint32_t> add(std::span<const uint8_t> bytes, uint64_t now_ns);

  // True when the batch has reached a bound: items, bytes, or the oldest item's age.
  bool should_flush(uint64_t now_ns) const;
  uint32_t items() const { return items_; }
  uint64_t blob_bytes() const { return blob_used_; }

  // The batch of everything added since the last reset, with outputs pointing at owned arrays.
  kernels::Batch batch();
  std::span<const uint32_t> crc() const { return {crc_.data(), items_}; }
  std::span<const uint16_t> slots() const { return {slot_.data(), items_}; }
  std::span<const uint32_t> partitions() const { return {partition_.data(), items_}; }
  void reset();

 private:
  kernels::Op op_;
  BatcherOptions options_;
  const uint32_t* slot_to_partition_;
  std::vector<uint8_t> blob_;
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> crc_;
  std::vector<uint16_t> slot_;
  std::vector<uint32_t> partition_;
  uint32_t items_ = 0;
  uint64_t blob_used_ = 0;
  uint64_t oldest_ns_ = 0;
};

}  // namespace tally::offload
