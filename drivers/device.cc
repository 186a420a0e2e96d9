// Names of backends and the synchronous submit-and-wait helper of the Device interface.
#include "drivers/device.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace tally::drivers {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kCpu: return "cpu";
    case Backend::kCuda: return "cuda";
    case Backend::kFpgaSim: return "fpga_sim";
    case Backend::kXrt: return "xrt";
    case Backend::kIsal: return "isal";
  }
  return "?";
}

bool parse_backend(std::string_view name, Backend* out) {
  TALLY_ASSERT(out != nullptr);
  for (size_t i = 0; i < kBackendCount; ++i) {
    if (name == backend_name(static_cast<Backend>(i))) {
      *out = static_cast<Backend>(i);
      return true;
    }
  }
  return false;
}

bool gpu_required() {
  const char* v = std::getenv(kRequireGpuVariable);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

Status run_sync(Device& device, const Batch& batch, uint64_t timeout_ns) {
  TALLY_ASSERT(timeout_ns > 0);
  // A tag no scheduler uses: run_sync is for devices not shared with a scheduler.
  constexpr uint64_t kSyncTag = 0xfeedfacecafebeefull;
  TALLY_ASSERT_MSG(device.in_flight() == 0, "run_sync needs an idle device");
  Completion done;
  if (device.run_inline(batch, &done)) return std::move(done.status);
  TALLY_RETURN_IF_ERROR(device.submit(batch, kSyncTag));
  // Inline devices complete inside submit: look once before paying for a clock read.
  if (device.poll(std::span<Completion>(&done, 1), 0) == 1) {
    TALLY_ASSERT(done.tag == kSyncTag);
    return std::move(done.status);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  while (std::chrono::steady_clock::now() < deadline) {
    if (device.poll(std::span<Completion>(&done, 1), 1'000'000) == 1) {
      TALLY_ASSERT(done.tag == kSyncTag);
      return std::move(done.status);
    }
  }
  return Status::unavailable("device did not complete the batch in time");
}

}  // namespace tally::drivers
