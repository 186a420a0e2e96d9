// Predicted time of one batch per (op, backend): launch + items * per_item + bytes / bandwidth.
// Parameters come from `tally-bench calibrate` (a TOML file tallyd reads) or from built-in defaults.
#pragma once

#include <array>
#include <string>

#include "drivers/device.h"
#include "host/common/status.h"

namespace tally::offload {

using drivers::Backend;
using drivers::kBackendCount;
using kernels::kOpCount;
using kernels::Op;

struct CostParams {
  double launch_ns = 0;      // fixed cost of one batch (submit, launch, completion)
  double per_item_ns = 0;    // per item beyond the bytes
  double bytes_per_ns = 1;   // input bandwidth (GB/s); transfers included for devices across PCIe
  bool measured = false;     // from a calibration run rather than the defaults
};

class CostModel {
 public:
  // Conservative defaults: the CPU is assumed fast; devices must be calibrated to win small batches.
  static CostModel defaults();

  // Inline and division-free: the scheduler predicts on every batch, small ones included.
  double predict_ns(Op op, Backend backend, uint64_t items, uint64_t bytes) const {
    const size_t i = index(op, backend);
    const CostParams& p = table_[i];
    return p.launch_ns + static_cast<double>(items) * p.per_item_ns + static_cast<double>(bytes) * ns_per_byte_[i];
  }
  const CostParams& params(Op op, Backend backend) const { return table_[index(op, backend)]; }
  void set(Op op, Backend backend, const CostParams& p);

  // The calibration file: one TOML table per [op.backend] with launch_ns, per_item_ns, bytes_per_ns.
  // Entries missing from the file keep their defaults.
  static Result<CostModel> load(const std::string& path);
  // A missing file gives the defaults; a malformed one is an error.
  static Result<CostModel> load_or_defaults(const std::string& path);
  Status save(const std::string& path) const;

 private:
  static size_t index(Op op, Backend b) { return static_cast<size_t>(op) * kBackendCount + static_cast<size_t>(b); }
  std::array<CostParams, kOpCount * kBackendCount> table_{};
  std::array<double, kOpCount * kBackendCount> ns_per_byte_{};  // 1 / bytes_per_ns, kept by set()
};

// Fits launch, per-item and bandwidth to (items, bytes, ns) samples by least squares on three
// unknowns; negative fits are clamped to zero. At least 3 samples.
struct CostSample {
  double items = 0;
  double bytes = 0;
  double ns = 0;
};
CostParams fit_cost(const CostSample* samples, size_t count);

}  // namespace tally::offload
