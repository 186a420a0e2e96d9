// The cuda backend: finds a GPU at run time, stages batches through pinned host buffers into device
// buffers (two slots, two streams: one batch copies while the other computes) and runs the kernels.
#pragma once

#include <memory>

#include "drivers/device.h"

namespace tally::drivers {

struct CudaDeviceOptions {
  int device_ordinal = 0;
  uint64_t slot_bytes = uint64_t{256} << 20;     // pinned and device bytes per slot (inputs + outputs)
  uint64_t scratch_bytes = uint64_t{128} << 20;  // device scratch per slot for the Thrust ops
  // Test hook: the n-th submitted batch (1-based) fails as if a CUDA call had (0: never).
  uint64_t inject_failure_at_batch = 0;
};

inline constexpr uint32_t kCudaSlots = 2;
inline constexpr uint64_t kCudaSlotBytesMax = uint64_t{4} << 30;

// Threading as every Device (one caller at a time), but that caller need not be the thread that
// opened it: submit and poll make the device current on whichever thread calls them.
class CudaDevice final : public Device {
 public:
  // kUnavailable when no CUDA device is usable or the buffers cannot be allocated; the message carries
  // the runtime's own error ("cudaErrorNoDevice: no CUDA-capable device is detected" on a machine
  // without a GPU; anything else is a GPU or driver that does not work).
  static Result<std::unique_ptr<CudaDevice>> open(CudaDeviceOptions options = {});
  ~CudaDevice() override;

  const Capabilities& capabilities() const override { return caps_; }
  Status submit(const Batch& batch, uint64_t tag) override;
  size_t poll(std::span<Completion> out, uint64_t wait_ns) override;
  uint32_t in_flight() const override;
  bool healthy() const override { return !failed_; }

  struct Impl;

 private:
  explicit CudaDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Capabilities caps_;
  bool failed_ = false;
};

}  // namespace tally::drivers
