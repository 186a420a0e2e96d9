// The xrt backend: the hw/ kernels on a real card through XRT's native C++ API. It packs batches into
// the same DMA records (drivers/fpga_sim/layout.h) as fpga_sim, so only the XRT calls are untested here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drivers/device.h"
#include "drivers/fpga_sim/layout.h"

namespace tally::drivers {

struct XrtOptions {
  std::string xclbin_path;                  // holds tally_crc32c, tally_quorum, tally_resolve_lww
  uint32_t device_index = 0;
  uint32_t items_max = 1u << 16;            // sizes every buffer object, allocated once at open
  uint64_t blob_bytes_max = 64ull << 20;
  uint32_t run_timeout_ms = 1000;           // a kernel run longer than this fails the device
};

// One batch in flight at a time: submit() packs, copies to the card and starts the kernel; poll()
// waits for it, copies the results back and unpacks them. Not thread-safe, like every Device.
class XrtDevice final : public Device {
 public:
  // Opens the card and loads the xclbin; kUnavailable when either is missing (a normal case).
  static Result<std::unique_ptr<XrtDevice>> open(const XrtOptions& options);
  ~XrtDevice() override;
  XrtDevice(const XrtDevice&) = delete;
  XrtDevice& operator=(const XrtDevice&) = delete;

  const Capabilities& capabilities() const override { return caps_; }
  Status submit(const Batch& batch, uint64_t tag) override;
  size_t poll(std::span<Completion> out, uint64_t wait_ns) override;
  uint32_t in_flight() const override { return pending_ ? 1 : 0; }
  bool healthy() const override { return healthy_; }

 private:
  struct Card;  // XRT objects, kept out of this header so callers need no XRT headers
  XrtDevice(const XrtOptions& options, std::unique_ptr<Card> card);
  Status finish(Completion* done);

  XrtOptions options_;
  Capabilities caps_;
  std::unique_ptr<Card> card_;
  bool healthy_ = true;
  bool pending_ = false;
  Batch batch_;                      // the batch in flight (its output pointers)
  uint64_t tag_ = 0;
  uint64_t records_ = 0;             // records or descriptors sent with it
  std::chrono::steady_clock::time_point started_;
  // Host staging, sized once; the same records the simulator consumes.
  std::vector<fpga::ChecksumDescriptor> descriptors_;
  std::vector<uint32_t> crc_results_;
  std::vector<fpga::TallyRecord> tally_records_;
  std::vector<uint64_t> tally_results_;
  std::vector<fpga::LwwRecord> lww_records_;
  std::vector<fpga::LwwResult> lww_results_;
  std::vector<uint32_t> key_starts_;
};

}  // namespace tally::drivers
