// Random batches that own their memory, for differential tests and the offload benchmark: one
// generator, so every backend is compared with the CPU reference on the same shapes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "kernels/cpu/formats.h"

namespace tally::kernels {

struct BatchShape {
  Op op = Op::kChecksum;
  ResolveKind resolve_kind = ResolveKind::kLww;
  bool merkle_diff = false;
  uint32_t items = 0;
  uint32_t item_bytes_min = 0;  // checksum/partition range lengths, uniform in [min, max]
  uint32_t item_bytes_max = 0;
  uint32_t keys = 0;            // resolve: distinct keys (0: items / 4 + 1)
  uint32_t merkle_depth = 8;
  uint32_t merkle_partitions = 4;
};

// A batch with its inputs and outputs in owned vectors; copies rebind the pointers to the copy.
class OwnedBatch {
 public:
  OwnedBatch() = default;
  OwnedBatch(const OwnedBatch& other);
  OwnedBatch& operator=(const OwnedBatch& other);

  const Batch& batch() const { return batch_; }
  Batch& batch() { return batch_; }
  // Sets every output byte to `fill`, so a backend that skips an output is caught.
  void poison_outputs(uint8_t fill);
  // Empty string when outputs are equal, else the first difference.
  std::string compare_outputs(const OwnedBatch& other) const;

  static OwnedBatch random(const BatchShape& shape, Rng& rng);

 private:
  void rebind();

  Batch batch_;
  BatchShape shape_;
  std::vector<uint8_t> blob_;
  std::vector<uint64_t> u64_in_[4];
  std::vector<uint32_t> u32_in_[4];
  std::vector<uint8_t> u8_in_[2];
  std::vector<uint64_t> u64_out_[3];
  std::vector<uint32_t> u32_out_[3];
  std::vector<uint8_t> u8_out_;
  std::vector<uint16_t> u16_out_;
  std::vector<int64_t> i64_out_;
};

}  // namespace tally::kernels
