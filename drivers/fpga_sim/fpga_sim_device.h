// The fpga_sim backend: hw/'s Verilator models behind the Device interface, packing batches into the
// same DMA records as the xrt driver. Reports cycles and the time they take at a configured clock.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "drivers/device.h"
#include "drivers/fpga_sim/kernel_sim.h"

namespace tally::drivers {

struct FpgaSimOptions {
  double clock_mhz = 300.0;                 // the card clock the projected times assume
  uint32_t items_max = 1u << 16;            // per batch: descriptors, groups + reads, LWW items and keys
  uint64_t blob_bytes_max = 64ull << 20;    // checksum blob per batch
  uint32_t in_flight_max = 4;
  fpga::Traffic traffic;                    // bubbles and back-pressure, for tests; none by default
};

// What the last batch cost on the simulated card.
struct FpgaSimRun {
  kernels::Op op = kernels::Op::kChecksum;
  fpga::SimStats stats;
  uint64_t projected_ns = 0;  // stats.cycles at clock_mhz
};

// Runs each batch to completion inside submit() (simulation is work on the caller's thread); poll()
// hands the completions back in order. Not thread-safe, like every Device.
class FpgaSimDevice final : public Device {
 public:
  explicit FpgaSimDevice(FpgaSimOptions options = {});
  ~FpgaSimDevice() override;
  FpgaSimDevice(const FpgaSimDevice&) = delete;
  FpgaSimDevice& operator=(const FpgaSimDevice&) = delete;

  const Capabilities& capabilities() const override { return caps_; }
  Status submit(const Batch& batch, uint64_t tag) override;
  size_t poll(std::span<Completion> out, uint64_t wait_ns) override;
  uint32_t in_flight() const override { return completions_count_; }
  bool healthy() const override { return healthy_; }

  const FpgaSimRun& last_run() const { return last_run_; }
  uint64_t total_cycles() const { return total_cycles_; }
  uint64_t projected_ns(uint64_t cycles) const;

 private:
  Status run_checksum(const kernels::ChecksumBatch& b, fpga::SimStats* stats);
  Status run_tally(const kernels::TallyBatch& b, fpga::SimStats* stats);
  Status run_lww(const kernels::LwwBatch& b, fpga::SimStats* stats);
  Status check_limits(const Batch& batch) const;

  FpgaSimOptions options_;
  Capabilities caps_;
  bool healthy_ = true;
  uint64_t traffic_runs_ = 0;  // varies the traffic seed from one run to the next
  fpga::CrcKernelSim crc_;
  fpga::TallyKernelSim tally_;
  fpga::LwwKernelSim lww_;
  // Staging buffers, sized once from the options (the card's DMA buffers in the xrt driver).
  std::vector<fpga::ChecksumDescriptor> descriptors_;
  std::vector<uint32_t> crc_results_;
  std::vector<fpga::TallyRecord> tally_records_;
  std::vector<uint64_t> tally_results_;
  std::vector<fpga::LwwRecord> lww_records_;
  std::vector<fpga::LwwResult> lww_results_;
  std::vector<uint32_t> key_starts_;
  // Completions not yet polled: a ring of in_flight_max entries.
  std::vector<Completion> completions_;
  uint32_t completions_head_ = 0;
  uint32_t completions_count_ = 0;
  FpgaSimRun last_run_;
  uint64_t total_cycles_ = 0;
};

}  // namespace tally::drivers
