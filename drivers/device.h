// The one interface every offload backend implements (cpu, cuda, fpga_sim, xrt): capabilities,
// submit a batch, collect completions. The scheduler in host/offload talks only to this.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::drivers {

using kernels::Batch;
using kernels::Op;
using kernels::kOpCount;

enum class Backend : uint8_t { kCpu = 0, kCuda, kFpgaSim, kXrt, kIsal };
inline constexpr size_t kBackendCount = 5;
const char* backend_name(Backend b);
bool parse_backend(std::string_view name, Backend* out);

// Per op: whether the device runs it and the largest batch it accepts.
struct OpLimits {
  bool supported = false;
  uint32_t items_max = 0;
  uint64_t blob_bytes_max = 0;
};

struct Capabilities {
  Backend backend = Backend::kCpu;
  std::string name;                     // e.g. "cpu x2 threads", "NVIDIA H100 (sm_90)"
  std::array<OpLimits, kOpCount> ops{};
  uint32_t in_flight_max = 1;           // batches submitted and not yet completed
  const OpLimits& limits(Op op) const { return ops[static_cast<size_t>(op)]; }
};

// One finished batch. status is not ok when the device failed it; the outputs are then undefined
// and the submitter re-runs the batch elsewhere (the scheduler does so on the CPU).
struct Completion {
  uint64_t tag = 0;
  Status status;
  // Time from start of work to completion as the device measured it; 0 when the device did not time
  // the batch (the cpu backend's small inline batches, where two clock reads would cost more than
  // the work).
  uint64_t device_ns = 0;
};

// Threading: submit/poll/capabilities are called from one thread (the owning scheduler's).
// Buffers: a driver owns its staging and device buffers, allocated once at open and bounded by its
// capabilities; it never keeps pointers into a batch after the batch's completion is returned.
class Device {
 public:
  virtual ~Device() = default;
  virtual const Capabilities& capabilities() const = 0;

  // Queues a validated batch under the caller's tag. Errors: kInvalidArgument (op unsupported or over
  // limits), kResourceExhausted (in_flight_max reached: poll first), kUnavailable (device failed).
  // The batch's input and output memory must stay valid until its completion is polled.
  virtual Status submit(const Batch& batch, uint64_t tag) = 0;

  // Moves up to out.size() completions into out, waiting up to wait_ns for the first one.
  // Returns how many were written. An empty out only waits (up to wait_ns) for a completion to be ready.
  virtual size_t poll(std::span<Completion> out, uint64_t wait_ns) = 0;

  // Runs the batch to completion on the caller's thread when this device can do so without queueing
  // (the cpu backend's small batches): sets *done (tag left 0) and returns true. Returns false,
  // having done nothing, when the batch must go through submit/poll instead. Callers that would
  // only wait for the completion use this to skip the completion queue and its bookkeeping.
  virtual bool run_inline(const Batch& batch, Completion* done) { return false; }

  // Batches submitted and not yet returned by poll.
  virtual uint32_t in_flight() const = 0;

  // False once the device has failed (e.g. a CUDA error); it then accepts no more work.
  virtual bool healthy() const = 0;
};

// TALLY_REQUIRE_GPU=1 in the environment (the GPU run script sets it): a GPU that cannot be used is
// an error wherever it would otherwise be a skip or an absent backend, so a broken card or driver
// cannot pass for a machine without one.
bool gpu_required();
inline constexpr const char* kRequireGpuVariable = "TALLY_REQUIRE_GPU";

// Submits one batch and waits for its completion (up to timeout_ns); a convenience for tests and
// tools, not for the data path.
Status run_sync(Device& device, const Batch& batch, uint64_t timeout_ns = 10'000'000'000ull);

}  // namespace tally::drivers
