// The Verilated kernels driven cycle by cycle with AXI-stream rules: a beat, once offered, stays on the
// port until in_ready takes it; results are taken whenever out_valid meets out_ready.
#include "drivers/fpga_sim/kernel_sim.h"

#include <algorithm>
#include <cstring>

#include "Vcrc32c_stream.h"
#include "Vresolve_lww.h"
#include "Vtally_quorum.h"
#include "verilated.h"

namespace tally::drivers::fpga {

namespace {

template <typename Model>
void reset(Model& m) {
  m.rst = 1;
  m.in_valid = 0;
  m.out_ready = 0;
  for (uint32_t c = 0; c < kSimResetCycles; ++c) {
    m.clk = 0;
    m.eval();
    m.clk = 1;
    m.eval();
  }
  m.rst = 0;
  m.clk = 0;
  m.eval();
}

// Streams `beats` beats through the model. Source: present() puts the current beat on the ports,
// advance() moves past it once taken. take(i) reads result i from the ports.
template <typename Model, typename Present, typename Advance, typename Take>
Result<SimStats> stream(Model& m, uint64_t beats, uint64_t results_expected, const Traffic& traffic,
                        Present present, Advance advance, Take take) {
  TALLY_ASSERT(traffic.in_gap_per_mille < 1000 && traffic.out_stall_per_mille < 1000);
  TALLY_ASSERT(results_expected <= beats);
  Rng rng(traffic.seed);
  reset(m);
  SimStats stats;
  const uint64_t cycles_max = beats * kSimCyclesPerBeatMax + kSimDrainCyclesMax;
  uint64_t next_result = 0;
  bool offering = false;
  while (stats.beats < beats || next_result < results_expected) {
    if (!offering && stats.beats < beats && !rng.chance(traffic.in_gap_per_mille, 1000)) {
      present();
      offering = true;
    }
    const bool out_ready = !rng.chance(traffic.out_stall_per_mille, 1000);
    m.in_valid = offering;
    m.out_ready = out_ready;
    m.clk = 0;
    m.eval();
    const bool in_fire = offering && m.in_ready;
    if (offering && !m.in_ready) ++stats.in_stall_cycles;
    if (m.out_valid && out_ready) {
      if (next_result >= results_expected) return Status::internal("fpga_sim: kernel produced an extra result");
      take(next_result++);
    }
    m.clk = 1;
    m.eval();
    ++stats.cycles;
    if (in_fire) {
      advance();
      offering = false;
      ++stats.beats;
    }
    if (stats.cycles > cycles_max) return Status::internal("fpga_sim: kernel hung (watchdog)");
  }
  m.in_valid = 0;
  m.out_ready = 0;
  stats.results = next_result;
  return stats;
}

// Verilator 5.006 tears a model's scopes down through the thread's current context, which may be
// another harness's context or one already destroyed: point it at the model's own first.
template <typename Model>
void release(VerilatedContext& context, std::unique_ptr<Model>& model) {
  Verilated::threadContextp(&context);
  model->final();
  model.reset();
  TALLY_ASSERT(model == nullptr);
}

// Registers without a reset start from seeded random values, as on silicon, so a kernel that relies on
// power-up zeros fails in simulation too.
constexpr int kRandomizeInitialValues = 2;
constexpr uint64_t kInitialValueSeed = 0x7a11;

std::unique_ptr<VerilatedContext> make_context() {
  auto context = std::make_unique<VerilatedContext>();
  context->randReset(kRandomizeInitialValues);
  context->randSeed(static_cast<int>(kInitialValueSeed));
  TALLY_ASSERT(context->randReset() == kRandomizeInitialValues);
  return context;
}

uint64_t crc_beats_of(uint32_t bytes) { return std::max<uint64_t>(1, (uint64_t{bytes} + kCrcBeatBytes - 1) / kCrcBeatBytes); }

}  // namespace

CrcKernelSim::CrcKernelSim()
    : context_(make_context()),
      model_(std::make_unique<Vcrc32c_stream>(context_.get(), "crc32c_stream")) {}
CrcKernelSim::~CrcKernelSim() { release(*context_, model_); }

Result<SimStats> CrcKernelSim::run(std::span<const uint8_t> blob, std::span<const ChecksumDescriptor> desc,
                                   std::span<uint32_t> crc_out, const Traffic& traffic) {
  if (crc_out.size() < desc.size()) return Status::invalid("fpga_sim checksum: output too small");
  uint64_t beats = 0;
  uint64_t payload_bytes = 0;
  for (const ChecksumDescriptor& d : desc) {
    if (d.offset > blob.size() || blob.size() - d.offset < d.bytes) return Status::invalid("fpga_sim checksum: range outside blob");
    beats += crc_beats_of(d.bytes);
    payload_bytes += d.bytes;
  }
  Vcrc32c_stream& m = *model_;
  size_t item = 0;
  uint32_t item_pos = 0;  // bytes of the current item already streamed
  auto present = [&] {
    TALLY_ASSERT(item < desc.size());
    const ChecksumDescriptor& d = desc[item];
    const uint32_t left = d.bytes - item_pos;
    const bool last = left <= kCrcBeatBytes;
    // Like a DMA engine the shell reads whole words: bytes past the item's end (up to the blob's end)
    // ride along and the kernel must ignore them.
    uint8_t beat[kCrcBeatBytes] = {};
    const uint64_t start = d.offset + item_pos;
    std::memcpy(beat, blob.data() + start, std::min<uint64_t>(kCrcBeatBytes, blob.size() - start));
    for (uint32_t w = 0; w < kCrcBeatBytes / 4; ++w) {
      uint32_t word;
      std::memcpy(&word, beat + 4 * w, 4);  // byte 4w lands in bits [7:0]: the little-endian order of the port
      m.in_data[w] = word;
    }
    m.in_bytes = last ? left : kCrcBeatBytes;
    m.in_last = last;
  };
  auto advance = [&] {
    const uint32_t left = desc[item].bytes - item_pos;
    if (left <= kCrcBeatBytes) {
      ++item;
      item_pos = 0;
    } else {
      item_pos += kCrcBeatBytes;
    }
  };
  auto take = [&](uint64_t i) { crc_out[i] = m.out_crc; };
  Result<SimStats> stats = stream(m, beats, desc.size(), traffic, present, advance, take);
  if (stats.is_ok()) {
    TALLY_ASSERT(item == desc.size());
    stats->payload_bytes = payload_bytes;
  }
  return stats;
}

TallyKernelSim::TallyKernelSim()
    : context_(make_context()),
      model_(std::make_unique<Vtally_quorum>(context_.get(), "tally_quorum")) {}
TallyKernelSim::~TallyKernelSim() { release(*context_, model_); }

Result<SimStats> TallyKernelSim::run(std::span<const TallyRecord> records, std::span<uint64_t> results,
                                     const Traffic& traffic) {
  if (results.size() < records.size()) return Status::invalid("fpga_sim tally: output too small");
  Vtally_quorum& m = *model_;
  size_t next = 0;
  auto present = [&] {
    TALLY_ASSERT(next < records.size());
    const TallyRecord& rec = records[next];
    // Slot r occupies bits [96r +: 96] = words 3r (low), 3r+1, 3r+2 (high).
    for (uint32_t r = 0; r < kTallySlots; ++r) {
      m.in_keys[3 * r] = static_cast<uint32_t>(rec.key_low[r]);
      m.in_keys[3 * r + 1] = static_cast<uint32_t>(rec.key_low[r] >> 32);
      m.in_keys[3 * r + 2] = rec.key_high[r];
    }
    m.in_mask = rec.mask;
    m.in_read_mode = rec.read_mode;
  };
  auto advance = [&] { ++next; };
  auto take = [&](uint64_t i) { results[i] = m.out_result; };
  return stream(m, records.size(), records.size(), traffic, present, advance, take);
}

LwwKernelSim::LwwKernelSim()
    : context_(make_context()),
      model_(std::make_unique<Vresolve_lww>(context_.get(), "resolve_lww")) {}
LwwKernelSim::~LwwKernelSim() { release(*context_, model_); }

Result<SimStats> LwwKernelSim::run(std::span<const LwwRecord> records, std::span<LwwResult> results,
                                   const Traffic& traffic) {
  uint64_t keys = 0;
  for (const LwwRecord& rec : records) keys += (rec.flags & kLwwLast) ? 1 : 0;
  if (results.size() < keys) return Status::invalid("fpga_sim lww: output too small");
  if (!records.empty() && !(records.back().flags & kLwwLast)) return Status::invalid("fpga_sim lww: stream ends inside a key");
  Vresolve_lww& m = *model_;
  size_t next = 0;
  auto present = [&] {
    TALLY_ASSERT(next < records.size());
    const LwwRecord& rec = records[next];
    m.in_first = (rec.flags & kLwwFirst) != 0;
    m.in_last = (rec.flags & kLwwLast) != 0;
    m.in_empty = (rec.flags & kLwwEmpty) != 0;
    m.in_cur_hlc = rec.current_hlc;
    m.in_cur_node = rec.current_node;
    m.in_hlc = rec.hlc;
    m.in_node = rec.node;
    m.in_index = rec.index;
  };
  auto advance = [&] { ++next; };
  auto take = [&](uint64_t i) {
    // out_winner = {hlc[127:64], node[63:32], source[31:0]}.
    results[i] = LwwResult{(uint64_t{m.out_winner[3]} << 32) | m.out_winner[2], m.out_winner[1], m.out_winner[0]};
  };
  return stream(m, records.size(), keys, traffic, present, advance, take);
}

}  // namespace tally::drivers::fpga
