// fpga_sim_sweep: runs batches of each supported op through FpgaSimDevice and prints the cycles and
// the projected kernel time at a clock, the figures the offload cost model needs for the FPGA.
// Usage: fpga_sim_sweep [clock_mhz]   (default 300)
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "drivers/fpga_sim/fpga_sim_device.h"
#include "host/common/rng.h"

namespace tally::drivers {
namespace {

constexpr uint32_t kSweepItemsMax = 4096;

void sweep_checksum(FpgaSimDevice& dev, Rng& rng) {
  const uint32_t item_bytes[] = {16, 64, 256, 1024, 4096, 16384};
  std::printf("%-10s %10s %10s %12s %14s %12s\n", "op", "items", "item_B", "cycles", "projected_us", "GB/s");
  for (uint32_t bytes : item_bytes) {
    const uint32_t items = static_cast<uint32_t>(std::min<uint64_t>(kSweepItemsMax, (8u << 20) / bytes));
    std::vector<uint8_t> blob(uint64_t{items} * bytes);
    for (auto& b : blob) b = static_cast<uint8_t>(rng.next());
    std::vector<uint64_t> offsets(items);
    std::vector<uint32_t> lengths(items, bytes), out(items);
    for (uint32_t i = 0; i < items; ++i) offsets[i] = uint64_t{i} * bytes;
    kernels::Batch b;
    b.op = kernels::Op::kChecksum;
    b.checksum = kernels::ChecksumBatch{blob.data(), blob.size(), offsets.data(), lengths.data(), items, out.data()};
    Status st = run_sync(dev, b);
    TALLY_ASSERT_MSG(st.is_ok(), "checksum sweep batch failed");
    const FpgaSimRun& run = dev.last_run();
    std::printf("%-10s %10u %10u %12llu %14.2f %12.2f\n", "checksum", items, bytes,
                static_cast<unsigned long long>(run.stats.cycles), run.projected_ns / 1e3,
                static_cast<double>(blob.size()) / static_cast<double>(run.projected_ns));
  }
}

void sweep_tally(FpgaSimDevice& dev, Rng& rng) {
  for (uint32_t groups : {16u, 256u, 4096u}) {
    std::vector<uint64_t> match(uint64_t{groups} * 8), commit(groups);
    std::vector<uint32_t> voters(groups, 0x1f);
    for (auto& m : match) m = rng.range(0, 1000);
    kernels::Batch b;
    b.op = kernels::Op::kTally;
    b.tally.groups = groups;
    b.tally.match = match.data();
    b.tally.voter_mask = voters.data();
    b.tally.commit_out = commit.data();
    Status st = run_sync(dev, b);
    TALLY_ASSERT_MSG(st.is_ok(), "tally sweep batch failed");
    const FpgaSimRun& run = dev.last_run();
    std::printf("%-10s %10u %10s %12llu %14.2f %12s\n", "tally", groups, "-",
                static_cast<unsigned long long>(run.stats.cycles), run.projected_ns / 1e3, "-");
  }
}

void sweep_lww(FpgaSimDevice& dev, Rng& rng) {
  for (uint32_t items : {16u, 256u, 4096u}) {
    const uint32_t keys = items / 4;
    std::vector<uint64_t> cur_hlc(keys), hlc(items), hlc_out(keys);
    std::vector<uint32_t> cur_node(keys), key_index(items), node(items), node_out(keys), source(keys);
    for (uint32_t i = 0; i < items; ++i) {
      key_index[i] = static_cast<uint32_t>(rng.uniform(keys));
      hlc[i] = rng.next();
      node[i] = static_cast<uint32_t>(rng.range(0, 6));
    }
    kernels::Batch b;
    b.op = kernels::Op::kResolve;
    b.resolve.kind = kernels::ResolveKind::kLww;
    b.resolve.lww = kernels::LwwBatch{keys, cur_hlc.data(), cur_node.data(), items, key_index.data(), hlc.data(),
                                      node.data(), hlc_out.data(), node_out.data(), source.data()};
    Status st = run_sync(dev, b);
    TALLY_ASSERT_MSG(st.is_ok(), "lww sweep batch failed");
    const FpgaSimRun& run = dev.last_run();
    std::printf("%-10s %10u %10s %12llu %14.2f %12s\n", "lww", items, "-",
                static_cast<unsigned long long>(run.stats.cycles), run.projected_ns / 1e3, "-");
  }
}

}  // namespace
}  // namespace tally::drivers

int main(int argc, char** argv) {
  using namespace tally::drivers;
  FpgaSimOptions options;
  if (argc > 1) options.clock_mhz = std::atof(argv[1]);
  if (!(options.clock_mhz > 0.0 && options.clock_mhz < 2000.0)) {
    std::fprintf(stderr, "usage: fpga_sim_sweep [clock_mhz in (0, 2000)]\n");
    return 2;
  }
  options.items_max = kSweepItemsMax;
  FpgaSimDevice dev(options);
  tally::Rng rng(2026);
  std::printf("# %s; kernel time only (no PCIe transfers)\n", dev.capabilities().name.c_str());
  sweep_checksum(dev, rng);
  sweep_tally(dev, rng);
  sweep_lww(dev, rng);
  return 0;
}
