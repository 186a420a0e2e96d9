// Scheduler: earliest predicted completion across devices, CPU fallback, per-op/backend counters.
#include "host/offload/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "kernels/cpu/reference.h"

namespace tally::offload {

namespace {
// Devices are polled in turn while waiting; this is the longest a ready completion waits unseen.
constexpr uint64_t kPollSliceNs = 50'000;
constexpr uint64_t kRunTimeoutNs = 60'000'000'000ull;
constexpr uint64_t kRunTag = 0xabad1dea0000ull;
}  // namespace

Scheduler::Scheduler(CostModel model, const Clock& clock, SchedulerOptions options)
    : model_(std::move(model)), clock_(clock), options_(options) {
  TALLY_ASSERT(options_.in_flight_max >= 1 && options_.in_flight_max <= kSchedulerInFlightMax);
  devices_.reserve(kSchedulerDevicesMax);
  in_flight_.reserve(options_.in_flight_max);
  scratch_.resize(options_.in_flight_max);
}

void Scheduler::add_device(Device* device) {
  TALLY_ASSERT(device != nullptr && devices_.size() < kSchedulerDevicesMax);
  if (devices_.empty()) {
    // The fallback must accept every batch the scheduler may hold at once.
    TALLY_ASSERT_MSG(device->capabilities().backend == Backend::kCpu, "the cpu device comes first");
    TALLY_ASSERT(device->capabilities().in_flight_max >= options_.in_flight_max);
  }
  devices_.push_back(device);
  for (size_t o = 0; o < kOpCount; ++o) {
    const Op op = static_cast<Op>(o);
    double launch_min = 1e300;
    for (size_t i = 1; i < devices_.size(); ++i) {
      if (!devices_[i]->capabilities().limits(op).supported) continue;
      launch_min = std::min(launch_min, model_.params(op, devices_[i]->capabilities().backend).launch_ns);
    }
    const CostParams& c = model_.params(op, Backend::kCpu);
    const double half_gap = (launch_min - c.launch_ns) / 2;
    auto bound = [half_gap](double per_unit) -> uint64_t {
      if (half_gap <= 0) return 0;
      if (per_unit <= 0 || half_gap / per_unit >= 1e18) return UINT64_MAX;
      return static_cast<uint64_t>(half_gap / per_unit);
    };
    cpu_sure_items_[o] = bound(c.per_item_ns);
    cpu_sure_bytes_[o] = bound(1.0 / c.bytes_per_ns);
  }
}

double Scheduler::queued_ns(const Device* device) const {
  double ns = 0;
  for (const InFlight& f : in_flight_) {
    if (f.device == device) ns += f.predicted_ns;
  }
  return ns;
}

Device* Scheduler::choose(const Batch& batch) const { return choose(batch, batch.items(), batch.input_bytes()); }

Device* Scheduler::choose(const Batch& batch, uint32_t items, uint64_t bytes) const {
  TALLY_ASSERT(!devices_.empty());
  // The cpu first, without the checks the others need: it is always healthy, supports every op at
  // the batch bounds, and holds at least as many batches as this scheduler. Its prediction is the bar
  // the others must beat, so for small batches a device is dismissed on its launch cost alone.
  Device* best = cpu();
  if (in_flight_.empty() && cpu_sure(batch.op, items, bytes)) return best;
  double best_ns = (in_flight_.empty() ? 0 : queued_ns(best)) + model_.predict_ns(batch.op, Backend::kCpu, items, bytes);
  for (size_t i = 1; i < devices_.size(); ++i) {
    Device* d = devices_[i];
    const drivers::Capabilities& caps = d->capabilities();
    if (model_.params(batch.op, caps.backend).launch_ns >= best_ns) continue;
    const drivers::OpLimits& lim = caps.limits(batch.op);
    if (!d->healthy() || !lim.supported || items > lim.items_max || bytes > lim.blob_bytes_max) continue;
    if (d->in_flight() >= caps.in_flight_max) continue;
    const double ns = queued_ns(d) + model_.predict_ns(batch.op, caps.backend, items, bytes);
    // Strictly earlier wins, so the CPU keeps ties.
    if (ns < best_ns) best = d, best_ns = ns;
  }
  return best;
}

Status Scheduler::submit_to(Device* device, const Batch& batch, uint64_t tag, uint64_t bytes, bool is_fallback,
                            Backend original) {
  TALLY_ASSERT(in_flight_.size() < options_.in_flight_max);
  const Backend backend = device->capabilities().backend;
  TALLY_RETURN_IF_ERROR(device->submit(batch, tag));
  const double predicted = model_.predict_ns(batch.op, backend, batch.items(), bytes);
  in_flight_.push_back(InFlight{tag, batch, device, predicted, bytes, is_fallback, original});
  return Status::ok();
}

Status Scheduler::submit(const Batch& batch, uint64_t tag) {
  TALLY_ASSERT_MSG(!devices_.empty(), "add the cpu device first");
  if (in_flight_.size() >= options_.in_flight_max) return Status::exhausted("offload: in-flight batches at maximum");
  // Devices validate at submit (the CPU path inside its loop), so a malformed batch is refused there
  // without a second pass here; the byte count is read before validation and only bounds-checked.
  const uint64_t bytes = batch.input_bytes();
  Device* device = devices_.size() == 1 ? cpu() : choose(batch, batch.items(), bytes);
  const Backend backend = device->capabilities().backend;
  Status st = submit_to(device, batch, tag, bytes, false, backend);
  if (st.is_ok() || device == cpu()) return st;
  if (st.code() == Code::kInvalidArgument) {
    // Malformed for the device may still be fine for the CPU (device limits); the CPU decides.
    Status cpu_st = submit_to(cpu(), batch, tag, bytes, true, backend);
    if (!cpu_st.is_ok()) return cpu_st;
    OpBackendCounters& c = counters_[static_cast<size_t>(batch.op)][static_cast<size_t>(backend)];
    OpBackendCounters::add(c.fallbacks);
    return Status::ok();
  }
  // The device refused (failed, full or limits): the CPU takes it, and the refusal is counted.
  OpBackendCounters& c = counters_[static_cast<size_t>(batch.op)][static_cast<size_t>(backend)];
  OpBackendCounters::add(c.failures);
  OpBackendCounters::add(c.fallbacks);
  return submit_to(cpu(), batch, tag, bytes, true, backend);
}

size_t Scheduler::poll(std::span<Completion> out, uint64_t wait_ns) {
  TALLY_ASSERT(!devices_.empty());
  uint64_t deadline_ns = 0;  // read from the clock only once there is something to wait for
  size_t delivered = 0;
  // Bounded: each pass either delivers, re-runs a failed batch on the CPU (at most in_flight_max
  // times per batch set) or waits one slice until the deadline.
  for (uint32_t pass = 0; pass < 2 * kSchedulerInFlightMax + 2 && delivered == 0; ++pass) {
    bool progressed = false;
    for (Device* d : devices_) {
      // Only devices this scheduler has batches on; the table is small (bounded by in_flight_max).
      if (std::none_of(in_flight_.begin(), in_flight_.end(), [d](const InFlight& f) { return f.device == d; })) continue;
      const size_t room = std::min(scratch_.size(), out.size() - delivered);
      if (room == 0) break;
      const size_t n = d->poll(std::span<Completion>(scratch_.data(), room), 0);
      for (size_t i = 0; i < n; ++i) {
        Completion& done = scratch_[i];
        auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                               [&](const InFlight& f) { return f.tag == done.tag && f.device == d; });
        TALLY_ASSERT_MSG(it != in_flight_.end(), "completion for a batch this scheduler did not submit");
        progressed = true;
        const Backend backend = d->capabilities().backend;
        const size_t op = static_cast<size_t>(it->batch.op);
        if (!done.status.is_ok() && d != cpu()) {
          OpBackendCounters& c = counters_[op][static_cast<size_t>(backend)];
          OpBackendCounters::add(c.failures);
          OpBackendCounters::add(c.fallbacks);
          // Re-submitted under the same tag; the entry moves to the CPU.
          Status st = cpu()->submit(it->batch, it->tag);
          TALLY_ASSERT_MSG(st.is_ok(), "the cpu device refused a fallback batch");
          it->device = cpu();
          it->is_fallback = true;
          it->original = backend;
          it->predicted_ns = model_.predict_ns(it->batch.op, Backend::kCpu, it->batch.items(), it->bytes);
          continue;
        }
        if (done.status.is_ok()) count_done(it->batch.op, backend, it->batch.items(), it->bytes, done.device_ns);
        // Order of the others does not matter: swap-remove.
        if (&*it != &in_flight_.back()) *it = in_flight_.back();
        in_flight_.pop_back();
        out[delivered++] = std::move(done);
      }
    }
    if (delivered > 0 || in_flight_.empty()) break;
    if (progressed) continue;  // a batch moved to the CPU: look again before waiting
    if (wait_ns == 0) break;
    const uint64_t now_ns = clock_.monotonic_ns();
    if (deadline_ns == 0) deadline_ns = now_ns + wait_ns;
    if (now_ns >= deadline_ns) break;
    // Wait on the device holding the oldest batch; the others are checked on the next pass.
    Device* d = in_flight_.front().device;
    const size_t n = d->poll(std::span<Completion>(scratch_.data(), 0), std::min(kPollSliceNs, deadline_ns - now_ns));
    TALLY_ASSERT(n == 0);
  }
  return delivered;
}

Status Scheduler::run(const Batch& batch) {
  TALLY_ASSERT_MSG(in_flight_.empty(), "run() needs an idle scheduler");
  TALLY_ASSERT_MSG(!devices_.empty(), "add the cpu device first");
  const uint64_t bytes = batch.input_bytes();
  const uint32_t items = batch.items();
  // The CPU without a call to choose() when it is the only device or the batch is too small for any
  // other to win (in_flight_ is empty here).
  Device* device = devices_.size() == 1 || cpu_sure(batch.op, items, bytes) ? cpu() : choose(batch, items, bytes);
  if (device == cpu()) {
    // The common case for small batches: the CPU runs it inside submit. Skipping the in-flight table
    // keeps the scheduler's own cost to a few nanoseconds over the bare device.
    Completion done;
    if (cpu()->run_inline(batch, &done)) {
      if (done.status.is_ok()) count_done(batch.op, Backend::kCpu, batch.items(), bytes, done.device_ns);
      return std::move(done.status);
    }
    TALLY_RETURN_IF_ERROR(cpu()->submit(batch, kRunTag));
    // A bulk batch for the pool: track it like any other and wait below.
    const double predicted = model_.predict_ns(batch.op, Backend::kCpu, batch.items(), bytes);
    in_flight_.push_back(InFlight{kRunTag, batch, cpu(), predicted, bytes, false, Backend::kCpu});
  } else {
    TALLY_RETURN_IF_ERROR(submit(batch, kRunTag));
  }
  Completion done;
  // A device may complete inline batches inside submit: try once before reading the clock.
  if (poll(std::span<Completion>(&done, 1), 0) == 0) {
    const uint64_t deadline_ns = clock_.monotonic_ns() + kRunTimeoutNs;
    while (poll(std::span<Completion>(&done, 1), kPollSliceNs * 20) == 0) {
      if (clock_.monotonic_ns() >= deadline_ns) return Status::unavailable("offload: batch did not complete in time");
    }
  }
  TALLY_ASSERT(done.tag == kRunTag);
  return std::move(done.status);
}

std::string info_line(Op op, Backend backend, const CounterValues& v) {
  char line[256];
  std::snprintf(line, sizeof line,
                "offload_%s_%s:batches=%llu,items=%llu,bytes=%llu,busy_us=%llu,fallbacks=%llu,failures=%llu\r\n",
                kernels::op_name(op), drivers::backend_name(backend), static_cast<unsigned long long>(v.batches),
                static_cast<unsigned long long>(v.items), static_cast<unsigned long long>(v.bytes),
                static_cast<unsigned long long>(v.busy_ns / 1000), static_cast<unsigned long long>(v.fallbacks),
                static_cast<unsigned long long>(v.failures));
  return line;
}

std::string Scheduler::info() const {
  std::string out;
  for (size_t o = 0; o < kOpCount; ++o) {
    for (size_t b = 0; b < kBackendCount; ++b) {
      CounterValues v;
      v += counters_[o][b];
      if (v.any()) out += info_line(static_cast<Op>(o), static_cast<Backend>(b), v);
    }
  }
  return out;
}

}  // namespace tally::offload
