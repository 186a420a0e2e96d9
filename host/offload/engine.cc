// Engine: opens the configured backends, leaves out the absent ones, and runs the server's batches.
#include "host/offload/engine.h"

#include <algorithm>

#include "drivers/cpu/cpu_device.h"
#include "kernels/cpu/slot.h"
#ifdef TALLY_HAVE_CUDA_DRIVER
#include "drivers/cuda/cuda_device.h"
#endif
#ifdef TALLY_HAVE_FPGA_SIM
#include "drivers/fpga_sim/fpga_sim_device.h"
#endif

namespace tally::offload {

namespace {
constexpr const char* kKnownBackends[] = {"cpu", "cuda", "fpga_sim"};

// A cuda backend that cannot be opened is left out (kUnavailable), unless the environment requires
// a GPU: then it is an error that stops whoever asked (tallyd's start, a benchmark).
Status cuda_absent(std::string why) {
  if (drivers::gpu_required()) {
    return Status::internal(why + " (and " + drivers::kRequireGpuVariable + "=1 requires a working GPU)");
  }
  return Status::unavailable(std::move(why));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

Result<std::vector<std::string>> parse_backend_list(std::string_view text) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.emplace_back(name);
  };
  add("cpu");
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view name = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "auto") {
      for (const char* b : kKnownBackends) add(b);
      continue;
    }
    if (std::none_of(std::begin(kKnownBackends), std::end(kKnownBackends), [&](const char* b) { return name == b; })) {
      return Status::invalid("unknown offload backend '" + std::string(name) + "' (cpu, cuda, fpga_sim, auto)");
    }
    add(name);
  }
  return out;
}

Engine::Engine(CostModel model, const Clock& clock, uint32_t in_flight_max)
    : scheduler_(std::move(model), clock, SchedulerOptions{.in_flight_max = in_flight_max}) {}

Engine::~Engine() = default;

Result<std::unique_ptr<drivers::Device>> open_device(std::string_view name, const DeviceOptions& options) {
  if (name == "cpu") {
    return std::unique_ptr<drivers::Device>(std::make_unique<drivers::CpuDevice>(
        drivers::CpuDeviceOptions{.threads = 0, .in_flight_max = options.in_flight_max}));
  }
  if (name == "cuda") {
#ifdef TALLY_HAVE_CUDA_DRIVER
    auto dev = drivers::CudaDevice::open(
        drivers::CudaDeviceOptions{.slot_bytes = options.cuda_slot_bytes, .scratch_bytes = options.cuda_scratch_bytes});
    if (!dev.is_ok()) {
      const std::string& why = dev.status().message();
      return cuda_absent(why.rfind("cuda", 0) == 0 ? why : "cuda: " + why);
    }
    return std::unique_ptr<drivers::Device>(std::move(dev).value());
#else
    return cuda_absent("cuda: not built into this binary");
#endif
  }
  if (name == "fpga_sim") {
#ifdef TALLY_HAVE_FPGA_SIM
    return std::unique_ptr<drivers::Device>(std::make_unique<drivers::FpgaSimDevice>());
#else
    return Status::unavailable("fpga_sim: not built into this binary");
#endif
  }
  return Status::invalid("unknown offload backend '" + std::string(name) + "'");
}

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options, const Clock& clock) {
  if (options.device.in_flight_max < 1 || options.device.in_flight_max > kSchedulerInFlightMax) {
    return Status::invalid("offload: in_flight_max out of range");
  }
  if (options.batch.items_max < 1 || options.batch.items_max > kBatcherItemsMax ||
      options.batch.blob_bytes_max < kEngineBatchBytesMin || options.batch.blob_bytes_max > kBatcherBlobBytesMax) {
    return Status::invalid("offload: batch bounds out of range (1..1048576 items, 64kb..256mb)");
  }
  Result<CostModel> model = CostModel::load_or_defaults(options.calibration_path);
  if (!model.is_ok()) return model.status();
  std::unique_ptr<Engine> e(new Engine(model.value(), clock, options.device.in_flight_max));
  e->batch_ = options.batch;
  e->batch_.linger_ns = 0;
  if (options.slot_to_partition != nullptr) {
    e->partition_batcher_ = std::make_unique<RangeBatcher>(Op::kPartition, e->batch_, options.slot_to_partition);
  }
  // Calibrated when the file gave at least one measured entry (a missing file gives the defaults).
  for (size_t o = 0; o < kOpCount && !options.calibration_path.empty(); ++o) {
    for (size_t b = 0; b < kBackendCount; ++b) {
      e->calibrated_ |= model.value().params(static_cast<Op>(o), static_cast<Backend>(b)).measured;
    }
  }
  // The cpu first: the scheduler's fallback.
  std::vector<std::string_view> names = {"cpu"};
  for (const std::string& name : options.backends) {
    if (name != "cpu") names.push_back(name);
  }
  for (std::string_view name : names) {
    auto dev = open_device(name, options.device);
    if (dev.is_ok()) {
      e->devices_.push_back(std::move(dev).value());
    } else if (dev.status().code() == Code::kUnavailable) {
      e->absent_ += dev.status().message() + "; ";
    } else {
      return dev.status();
    }
  }
  if (e->devices_.size() > kSchedulerDevicesMax) return Status::invalid("offload: too many backends");
  for (auto& d : e->devices_) e->scheduler_.add_device(d.get());
  if (!e->absent_.empty()) e->absent_.resize(e->absent_.size() - 2);
  return e;
}

std::string Engine::backends() const {
  std::string out;
  for (const auto& d : devices_) {
    if (!out.empty()) out += ',';
    out += drivers::backend_name(d->capabilities().backend);
  }
  return out;
}

Status Engine::partition(std::span<const std::string_view> keys, std::vector<uint16_t>& slots,
                         std::vector<uint32_t>& partitions) {
  TALLY_ASSERT_MSG(partition_batcher_ != nullptr, "the engine was opened without a slot map");
  RangeBatcher& b = *partition_batcher_;
  slots.resize(keys.size());
  partitions.resize(keys.size());
  size_t next = 0;
  while (next < keys.size()) {
    b.reset();
    const size_t first = next;
    while (next < keys.size()) {
      const std::string_view k = keys[next];
      Result<uint32_t> added = b.add({reinterpret_cast<const uint8_t*>(k.data()), k.size()}, 0);
      if (!added.is_ok()) {
        if (added.status().code() == Code::kResourceExhausted) break;  // full: run it, then go on
        return Status::invalid("partition: key longer than 64 KiB");
      }
      ++next;
    }
    TALLY_ASSERT(b.items() > 0);  // one key always fits an empty batch
    TALLY_RETURN_IF_ERROR(scheduler_.run(b.batch()));
    std::copy(b.slots().begin(), b.slots().end(), slots.begin() + static_cast<ptrdiff_t>(first));
    std::copy(b.partitions().begin(), b.partitions().end(), partitions.begin() + static_cast<ptrdiff_t>(first));
  }
  return Status::ok();
}

}  // namespace tally::offload
