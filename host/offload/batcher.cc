// RangeBatcher: bounded accumulation of byte ranges into one checksum or partition batch.
#include "host/offload/batcher.h"

#include <cstring>

namespace tally::offload {

RangeBatcher::RangeBatcher(kernels::Op op, BatcherOptions options, const uint32_t* slot_to_partition)
    : op_(op), options_(options), slot_to_partition_(slot_to_partition) {
  TALLY_ASSERT(op == kernels::Op::kChecksum || (op == kernels::Op::kPartition && slot_to_partition != nullptr));
  TALLY_ASSERT(options_.items_max >= 1 && options_.items_max <= kBatcherItemsMax);
  TALLY_ASSERT(options_.blob_bytes_max >= 1 && options_.blob_bytes_max <= kBatcherBlobBytesMax);
  TALLY_ASSERT(options_.linger_ns <= kBatcherLingerNsMax);
  blob_.resize(options_.blob_bytes_max);
  offsets_.resize(options_.items_max);
  lengths_.resize(options_.items_max);
  if (op == kernels::Op::kChecksum) {
    crc_.resize(options_.items_max);
  } else {
    slot_.resize(options_.items_max);
    partition_.resize(options_.items_max);
  }
}

Result<uint32_t> RangeBatcher::add(std::span<const uint8_t> bytes, uint64_t now_ns) {
  const uint64_t item_max = op_ == kernels::Op::kChecksum ? kernels::kChecksumItemBytesMax : kernels::kKeyBytesMax;
  if (bytes.size() > item_max || bytes.size() > options_.blob_bytes_max) {
    return Status::invalid("batcher: range larger than a batch may hold");
  }
  if (items_ == options_.items_max || options_.blob_bytes_max - blob_used_ < bytes.size()) {
    return Status::exhausted("batcher: batch full");
  }
  if (items_ == 0) oldest_ns_ = now_ns;
  if (!bytes.empty()) std::memcpy(blob_.data() + blob_used_, bytes.data(), bytes.size());
  offsets_[items_] = blob_used_;
  lengths_[items_] = static_cast<uint32_t>(bytes.size());
  blob_used_ += bytes.size();
  TALLY_ASSERT(blob_used_ <= options_.blob_bytes_max);
  return items_++;
}

bool RangeBatcher::should_flush(uint64_t now_ns) const {
  if (items_ == 0) return false;
  if (items_ >= options_.items_max || blob_used_ >= options_.blob_bytes_max) return true;
  return now_ns >= oldest_ns_ && now_ns - oldest_ns_ >= options_.linger_ns;
}

kernels::Batch RangeBatcher::batch() {
  kernels::Batch b;
  b.op = op_;
  if (op_ == kernels::Op::kChecksum) {
    b.checksum = kernels::ChecksumBatch{blob_.data(), blob_used_, offsets_.data(), lengths_.data(), items_, crc_.data()};
  } else {
    b.partition = kernels::PartitionBatch{blob_.data(), blob_used_, offsets_.data(), lengths_.data(), items_,
                                          slot_to_partition_, slot_.data(), partition_.data()};
  }
  return b;
}

void RangeBatcher::reset() {
  items_ = 0;
  blob_used_ = 0;
  oldest_ns_ = 0;
}

}  // namespace tally::offload
