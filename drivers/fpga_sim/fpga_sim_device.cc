// fpga_sim: validate, pack into DMA records, stream through the Verilated kernel, unpack, complete.
#include "drivers/fpga_sim/fpga_sim_device.h"

#include <cmath>
#include <string>

#include "kernels/cpu/reference.h"

namespace tally::drivers {

using kernels::Op;

FpgaSimDevice::FpgaSimDevice(FpgaSimOptions options) : options_(options) {
  TALLY_ASSERT(options_.clock_mhz > 0.0 && options_.in_flight_max > 0);
  TALLY_ASSERT(options_.items_max > 0 && options_.items_max <= kernels::kBatchItemsMax);
  caps_.backend = Backend::kFpgaSim;
  caps_.name = "fpga_sim (Verilator) @ " + std::to_string(static_cast<int>(options_.clock_mhz)) + " MHz";
  caps_.in_flight_max = options_.in_flight_max;
  const OpLimits limits{true, options_.items_max, options_.blob_bytes_max};
  caps_.ops[static_cast<size_t>(Op::kChecksum)] = limits;
  caps_.ops[static_cast<size_t>(Op::kTally)] = limits;
  caps_.ops[static_cast<size_t>(Op::kResolve)] = OpLimits{true, options_.items_max, 0};  // LWW only

  const size_t n = options_.items_max;
  descriptors_.resize(n);
  crc_results_.resize(n);
  tally_records_.resize(n);
  tally_results_.resize(n);
  lww_records_.resize(2 * n);  // items + keys, each at most items_max
  lww_results_.resize(n);
  key_starts_.resize(n + 1);
  completions_.resize(options_.in_flight_max);
}

FpgaSimDevice::~FpgaSimDevice() = default;

uint64_t FpgaSimDevice::projected_ns(uint64_t cycles) const {
  return static_cast<uint64_t>(std::llround(static_cast<double>(cycles) * 1000.0 / options_.clock_mhz));
}

Status FpgaSimDevice::check_limits(const Batch& batch) const {
  const OpLimits& lim = caps_.limits(batch.op);
  if (!lim.supported) return Status::invalid(std::string("fpga_sim: op not supported: ") + kernels::op_name(batch.op));
  switch (batch.op) {
    case Op::kChecksum:
      if (batch.checksum.items > lim.items_max) return Status::invalid("fpga_sim checksum: too many items");
      if (batch.checksum.blob_bytes > lim.blob_bytes_max) return Status::invalid("fpga_sim checksum: blob too large");
      return Status::ok();
    case Op::kTally:
      if (batch.tally.items() > lim.items_max) return Status::invalid("fpga_sim tally: too many groups and reads");
      return Status::ok();
    case Op::kResolve:
      if (batch.resolve.kind != kernels::ResolveKind::kLww) return Status::invalid("fpga_sim resolve: LWW only");
      if (batch.resolve.lww.items > lim.items_max || batch.resolve.lww.keys > lim.items_max) {
        return Status::invalid("fpga_sim resolve: too many items or keys");
      }
      return Status::ok();
    default:
      return Status::invalid("fpga_sim: op not supported");
  }
}

Status FpgaSimDevice::submit(const Batch& batch, uint64_t tag) {
  if (!healthy_) return Status::unavailable("fpga_sim: device failed earlier");
  if (completions_count_ >= options_.in_flight_max) return Status::exhausted("fpga_sim: in_flight_max reached");
  TALLY_RETURN_IF_ERROR(check_limits(batch));
  TALLY_RETURN_IF_ERROR(kernels::validate(batch));

  fpga::SimStats stats;
  Status st;
  switch (batch.op) {
    case Op::kChecksum: st = run_checksum(batch.checksum, &stats); break;
    case Op::kTally: st = run_tally(batch.tally, &stats); break;
    case Op::kResolve: st = run_lww(batch.resolve.lww, &stats); break;
    default: TALLY_UNREACHABLE();
  }
  if (!st.is_ok()) {
    // A hung or misbehaving kernel is a device failure: the scheduler re-runs the batch on the CPU.
    healthy_ = false;
    st = Status::unavailable("fpga_sim: " + st.message());
  }
  last_run_ = FpgaSimRun{batch.op, stats, projected_ns(stats.cycles)};
  total_cycles_ += stats.cycles;
  ++traffic_runs_;

  TALLY_ASSERT(completions_count_ < completions_.size());
  const uint32_t slot = (completions_head_ + completions_count_) % completions_.size();
  completions_[slot] = Completion{tag, st, last_run_.projected_ns};
  ++completions_count_;
  return Status::ok();
}

size_t FpgaSimDevice::poll(std::span<Completion> out, uint64_t /*wait_ns*/) {
  // Work finished inside submit(), so there is never anything to wait for.
  size_t n = 0;
  while (n < out.size() && completions_count_ > 0) {
    out[n++] = std::move(completions_[completions_head_]);
    completions_head_ = (completions_head_ + 1) % completions_.size();
    --completions_count_;
  }
  TALLY_ASSERT(completions_count_ <= completions_.size());
  return n;
}

namespace {
fpga::Traffic traffic_for_run(const fpga::Traffic& base, uint64_t run) {
  fpga::Traffic t = base;
  t.seed = base.seed + run;
  return t;
}
}  // namespace

Status FpgaSimDevice::run_checksum(const kernels::ChecksumBatch& b, fpga::SimStats* stats) {
  TALLY_ASSERT(b.items <= descriptors_.size());
  std::span<fpga::ChecksumDescriptor> desc(descriptors_.data(), b.items);
  TALLY_RETURN_IF_ERROR(fpga::pack_checksum(b, desc));
  Result<fpga::SimStats> r = crc_.run(std::span<const uint8_t>(b.blob, b.blob_bytes), desc,
                                      std::span<uint32_t>(crc_results_.data(), b.items),
                                      traffic_for_run(options_.traffic, traffic_runs_));
  if (!r.is_ok()) return r.status();
  for (uint32_t i = 0; i < b.items; ++i) b.crc_out[i] = crc_results_[i];
  *stats = *r;
  return Status::ok();
}

Status FpgaSimDevice::run_tally(const kernels::TallyBatch& b, fpga::SimStats* stats) {
  const uint64_t n = fpga::tally_records(b);
  TALLY_ASSERT(n <= tally_records_.size());
  std::span<fpga::TallyRecord> records(tally_records_.data(), n);
  TALLY_RETURN_IF_ERROR(fpga::pack_tally(b, records));
  std::span<uint64_t> results(tally_results_.data(), n);
  Result<fpga::SimStats> r = tally_.run(records, results, traffic_for_run(options_.traffic, traffic_runs_));
  if (!r.is_ok()) return r.status();
  TALLY_RETURN_IF_ERROR(fpga::unpack_tally(results, b));
  *stats = *r;
  return Status::ok();
}

Status FpgaSimDevice::run_lww(const kernels::LwwBatch& b, fpga::SimStats* stats) {
  TALLY_ASSERT(fpga::lww_records_max(b) <= lww_records_.size());
  uint64_t n = 0;
  TALLY_RETURN_IF_ERROR(fpga::pack_lww(b, key_starts_, lww_records_, &n));
  std::span<fpga::LwwResult> results(lww_results_.data(), b.keys);
  Result<fpga::SimStats> r = lww_.run(std::span<const fpga::LwwRecord>(lww_records_.data(), n), results,
                                      traffic_for_run(options_.traffic, traffic_runs_));
  if (!r.is_ok()) return r.status();
  TALLY_ASSERT(r->results == b.keys);
  TALLY_RETURN_IF_ERROR(fpga::unpack_lww(results, b));
  *stats = *r;
  return Status::ok();
}

}  // namespace tally::drivers
