// Cycle-level harnesses around the Verilated hw/ kernels: stream records in, collect results, count
// cycles. Traffic shaping injects input bubbles and output back-pressure to exercise the handshakes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "drivers/fpga_sim/layout.h"
#include "host/common/rng.h"
#include "host/common/status.h"

class VerilatedContext;
class Vcrc32c_stream;
class Vtally_quorum;
class Vresolve_lww;

namespace tally::drivers::fpga {

// A per-mille chance, each cycle, that the producer withholds a beat / the consumer is not ready.
struct Traffic {
  uint32_t in_gap_per_mille = 0;
  uint32_t out_stall_per_mille = 0;
  uint64_t seed = 1;
};

struct SimStats {
  uint64_t cycles = 0;          // from the first cycle a beat is offered to the last result taken
  uint64_t beats = 0;           // input transfers
  uint64_t results = 0;         // output transfers
  uint64_t payload_bytes = 0;   // checksum: item bytes streamed
  uint64_t in_stall_cycles = 0; // a beat was offered and in_ready was low
};

// Watchdog: a run may take at most this many cycles per beat plus the drain allowance, or it is
// reported as a hung kernel (Status kInternal) instead of spinning forever.
inline constexpr uint64_t kSimCyclesPerBeatMax = 1024;
inline constexpr uint64_t kSimDrainCyclesMax = 4096;
inline constexpr uint32_t kSimResetCycles = 4;

// The bytes of one checksum item as the DMA shell reads them.
struct ByteRange {
  const uint8_t* data = nullptr;
  uint32_t bytes = 0;
};

class CrcKernelSim {
 public:
  CrcKernelSim();
  ~CrcKernelSim();
  CrcKernelSim(const CrcKernelSim&) = delete;
  CrcKernelSim& operator=(const CrcKernelSim&) = delete;
  // crc_out[i] = CRC32C of blob[desc[i].offset, +desc[i].bytes).
  Result<SimStats> run(std::span<const uint8_t> blob, std::span<const ChecksumDescriptor> desc,
                       std::span<uint32_t> crc_out, const Traffic& traffic);

 private:
  std::unique_ptr<VerilatedContext> context_;
  std::unique_ptr<Vcrc32c_stream> model_;
};

class TallyKernelSim {
 public:
  TallyKernelSim();
  ~TallyKernelSim();
  TallyKernelSim(const TallyKernelSim&) = delete;
  TallyKernelSim& operator=(const TallyKernelSim&) = delete;
  Result<SimStats> run(std::span<const TallyRecord> records, std::span<uint64_t> results,
                       const Traffic& traffic);

 private:
  std::unique_ptr<VerilatedContext> context_;
  std::unique_ptr<Vtally_quorum> model_;
};

class LwwKernelSim {
 public:
  LwwKernelSim();
  ~LwwKernelSim();
  LwwKernelSim(const LwwKernelSim&) = delete;
  LwwKernelSim& operator=(const LwwKernelSim&) = delete;
  // One result per record flagged last, in record order.
  Result<SimStats> run(std::span<const LwwRecord> records, std::span<LwwResult> results,
                       const Traffic& traffic);

 private:
  std::unique_ptr<VerilatedContext> context_;
  std::unique_ptr<Vresolve_lww> model_;
};

}  // namespace tally::drivers::fpga
