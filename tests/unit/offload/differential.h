// Shapes every backend is checked on against the CPU reference: empty, single, odd, ranges from
// 1 byte to 1 MiB, and the maximum batch. Shared by the CPU-side and GPU differential tests.
#pragma once

#include <string>
#include <vector>

#include "kernels/testing/batch_gen.h"

namespace tally::kernels::testing {

inline std::string shape_name(const BatchShape& s) {
  std::string n = op_name(s.op);
  if (s.op == Op::kResolve) n += s.resolve_kind == ResolveKind::kLww ? "/lww" : s.resolve_kind == ResolveKind::kPnCounter ? "/pn" : "/orset";
  if (s.op == Op::kMerkle) n += s.merkle_diff ? "/diff" : "/build";
  return n + " items=" + std::to_string(s.items) + " bytes=" + std::to_string(s.item_bytes_min) + ".." +
         std::to_string(s.item_bytes_max);
}

// The differential shapes of one op. `large` adds the maximum batch and 1 MiB items.
inline std::vector<BatchShape> differential_shapes(Op op, bool large) {
  std::vector<BatchShape> out;
  auto add = [&](BatchShape s) { s.op = op; out.push_back(s); };
  switch (op) {
    case Op::kChecksum:
    case Op::kPartition: {
      const uint32_t max_bytes = op == Op::kChecksum ? (1u << 20) : 300;
      add({.items = 0});
      add({.items = 1, .item_bytes_min = 1, .item_bytes_max = 1});
      add({.items = 1, .item_bytes_min = 0, .item_bytes_max = 0});
      add({.items = 7, .item_bytes_min = 0, .item_bytes_max = 3});
      add({.items = 513, .item_bytes_min = 0, .item_bytes_max = 67});
      add({.items = 33, .item_bytes_min = 1000, .item_bytes_max = 5000});
      if (large) {
        add({.items = 3, .item_bytes_min = max_bytes - 1, .item_bytes_max = max_bytes});
        add({.items = kBatchItemsMax, .item_bytes_min = 0, .item_bytes_max = 16});
      }
      break;
    }
    case Op::kResolve:
      for (ResolveKind k : {ResolveKind::kLww, ResolveKind::kPnCounter, ResolveKind::kOrSet}) {
        add({.resolve_kind = k, .items = 0, .keys = 3});
        add({.resolve_kind = k, .items = 1, .keys = 1});
        add({.resolve_kind = k, .items = 999});
        add({.resolve_kind = k, .items = 4000, .keys = 17});
        if (large) add({.resolve_kind = k, .items = k == ResolveKind::kLww ? kBatchItemsMax : 100'000});
      }
      break;
    case Op::kTally:
      add({.items = 0});
      add({.items = 1});
      add({.items = 1001});
      if (large) add({.items = kBatchItemsMax});
      break;
    case Op::kMerkle:
      add({.items = 0, .merkle_depth = 3, .merkle_partitions = 2});
      add({.items = 1, .merkle_depth = 1, .merkle_partitions = 1});
      add({.items = 5000, .merkle_depth = 10, .merkle_partitions = 7});
      add({.merkle_diff = true, .items = 0, .merkle_depth = 4});
      add({.merkle_diff = true, .items = 9, .merkle_depth = 6});
      if (large) {
        add({.items = kBatchItemsMax, .merkle_depth = 12, .merkle_partitions = 64});
        add({.merkle_diff = true, .items = 64, .merkle_depth = kMerkleDepthMax});
      }
      break;
  }
  return out;
}

}  // namespace tally::kernels::testing
