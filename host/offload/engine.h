// One shard's offload engine: the cpu device (always there), the other backends the configuration
// names and this machine has, and a scheduler over them. The server builds batches for its own uses
// (key partitioning of multi-key commands, the dataset digest's checksums and Merkle trees) and runs
// them here; where each batch runs is the scheduler's choice.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/device.h"
#include "host/common/clock.h"
#include "host/offload/batcher.h"
#include "host/offload/scheduler.h"

namespace tally::offload {

// Bounds of the batches the engine's users build (partition calls, the digest's checksums): at most
// this many items and blob bytes per batch, so the buffers are bounded whatever a client sends. The
// blob must hold the largest single range: a 64 KiB key or a 64 KiB digest chunk.
inline constexpr uint64_t kEngineBatchBytesMin = uint64_t{64} << 10;
inline constexpr BatcherOptions kEngineBatchDefault{.items_max = 4096, .blob_bytes_max = 1 << 20, .linger_ns = 0};

// Sizes of the devices open_device creates. The defaults suit a shard of tallyd: its batches are
// bounded (checksum and partition 1 MiB, merkle 65,536 leaves: ~1.6 MB of input and tree, ~15 MB of
// scratch), and one engine per shard multiplies whatever is chosen here.
struct DeviceOptions {
  uint32_t in_flight_max = 64;                        // batches a device holds at once
  uint64_t cuda_slot_bytes = uint64_t{16} << 20;      // pinned host + device bytes per slot (two slots)
  uint64_t cuda_scratch_bytes = uint64_t{32} << 20;   // Thrust scratch per slot
};

// Opens one backend by name: cpu (inline on the caller's thread: a pool would compete with the
// other shards for cores), cuda or fpga_sim. kUnavailable, with the reason (the CUDA runtime's own
// error), when it is not built into this binary or not usable on this machine (no GPU, or a broken
// one); kInternal instead for cuda when TALLY_REQUIRE_GPU=1; kInvalidArgument for an unknown name.
Result<std::unique_ptr<drivers::Device>> open_device(std::string_view name, const DeviceOptions& options);

struct EngineOptions {
  // Backends to offer work to, by name: cpu, cuda, fpga_sim. The cpu is always used, first.
  std::vector<std::string> backends = {"cpu"};
  std::string calibration_path;  // empty: the built-in cost model
  // kSlotCount entries: the partition id of each slot (the server's: slot -> shard). Must outlive the
  // engine; partition() needs it.
  const uint32_t* slot_to_partition = nullptr;
  DeviceOptions device;
  // Item and byte bounds of each batch (the linger bound is unused: the server's batches run at once).
  BatcherOptions batch = kEngineBatchDefault;
};

// Parses "cpu,cuda" (spaces allowed; "auto" = every backend this build has). kInvalidArgument names
// an unknown backend.
Result<std::vector<std::string>> parse_backend_list(std::string_view text);

class Engine {
 public:
  // Opens each named backend. One that is not built into this binary or not present on this machine
  // (no GPU) is left out and described in absent(); that is not an error. A malformed calibration
  // file is, and so is an unusable cuda backend under TALLY_REQUIRE_GPU=1.
  static Result<std::unique_ptr<Engine>> open(const EngineOptions& options, const Clock& clock);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs one batch to completion on the backend the scheduler picks (the CPU on any device failure).
  Status run(const Batch& batch) { return scheduler_.run(batch); }

  // Slot (CRC16/XMODEM of the hash tag or key, as Redis Cluster) and slot_to_partition[slot] of each
  // key, as partition batches. slots and partitions are resized to keys.size(). kInvalidArgument for
  // a key over 64 KiB.
  Status partition(std::span<const std::string_view> keys, std::vector<uint16_t>& slots,
                   std::vector<uint32_t>& partitions);

  const Scheduler& scheduler() const { return scheduler_; }
  const BatcherOptions& batch_options() const { return batch_; }
  // "cpu" or "cpu,cuda": the backends in use, in the scheduler's order.
  std::string backends() const;
  // Why named backends are not in use ("cuda: device discovery failed: cudaErrorNoDevice: ..."), or empty.
  const std::string& absent() const { return absent_; }
  bool calibrated() const { return calibrated_; }

 private:
  Engine(CostModel model, const Clock& clock, uint32_t in_flight_max);

  std::vector<std::unique_ptr<drivers::Device>> devices_;  // [0] is the cpu
  Scheduler scheduler_;
  std::string absent_;
  bool calibrated_ = false;
  BatcherOptions batch_;
  std::unique_ptr<RangeBatcher> partition_batcher_;  // when a slot map was given
};

}  // namespace tally::offload
