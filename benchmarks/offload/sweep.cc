// Offload sweep: timing every backend on the same random batches, CSV, gnuplot plots, calibration.
#include "benchmarks/offload/sweep.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "host/offload/engine.h"
#include "host/offload/scheduler.h"
#include "kernels/cpu/reference.h"
#include "kernels/testing/batch_gen.h"

namespace tally::bench {

namespace {

constexpr uint32_t kSweepRunsMin = 3;
constexpr const char* kCsvHeader = "op,backend,batch_items,item_bytes,items_per_s,bytes_per_s,p50_us,p99_us,chosen\n";
constexpr size_t kCsvColumns = 9;
constexpr uint32_t kPartitionKeyBytes = 16;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

kernels::BatchShape shape_for(Op op, uint32_t items, uint32_t item_bytes) {
  kernels::BatchShape s;
  s.op = op;
  s.items = items;
  if (op == Op::kChecksum || op == Op::kPartition) s.item_bytes_min = s.item_bytes_max = item_bytes;
  if (op == Op::kMerkle) s.merkle_depth = 10, s.merkle_partitions = 16;
  return s;
}

// Bytes a point's blob would take, to skip points beyond the memory bound before generating them.
uint64_t blob_estimate(Op op, uint32_t items, uint32_t item_bytes) {
  if (op == Op::kChecksum || op == Op::kPartition) return uint64_t{items} * (item_bytes + 4);
  return uint64_t{items} * 160;  // the widest record: a PN-counter version
}

std::vector<uint32_t> batch_sizes(uint32_t max_items) {
  std::vector<uint32_t> out;
  for (uint64_t n = 1; n <= max_items && n <= kernels::kBatchItemsMax; n *= 4) out.push_back(static_cast<uint32_t>(n));
  if (out.empty() || out.back() != std::min(max_items, kernels::kBatchItemsMax)) {
    out.push_back(std::min(max_items, kernels::kBatchItemsMax));
  }
  return out;
}

// A sample is the mean of `reps` back-to-back runs, with reps chosen so that a sample lasts at least
// kSampleSecondsMin: a clock read costs tens of nanoseconds on a virtual machine, as much as a small
// batch, so timing one small run alone would measure the clock.
constexpr double kSampleSecondsMin = 2e-6;
constexpr uint32_t kRepsMax = 4096;
// Candidates on the same point are timed in alternating rounds, so drift and neighbours' load
// fall on all of them alike.
constexpr uint32_t kRounds = 5;

template <typename Fn>
uint32_t reps_for(Fn& fn) {
  fn();  // warm caches, pages and device code
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const double t0 = now_s();
    fn();
    best = std::min(best, now_s() - t0);
  }
  if (best >= kSampleSecondsMin) return 1;
  return static_cast<uint32_t>(std::min<double>(kRepsMax, std::ceil(kSampleSecondsMin / std::max(best, 1e-9))));
}

// Times each candidate on the same point; returns per-candidate sorted seconds per run.
std::vector<std::vector<double>> time_interleaved(const SweepOptions& o, const std::vector<std::function<void()>>& fns) {
  std::vector<uint32_t> reps;
  for (const auto& fn : fns) reps.push_back(reps_for(fn));
  std::vector<std::vector<double>> samples(fns.size());
  const uint32_t per_round_max = std::max<uint32_t>(1, o.runs_per_point_max / kRounds);
  const double round_budget = o.seconds_per_point / kRounds;
  for (uint32_t round = 0; round < kRounds; ++round) {
    for (size_t c = 0; c < fns.size(); ++c) {
      const double start = now_s();
      uint32_t taken = 0;
      while (taken < per_round_max && (taken == 0 || now_s() - start < round_budget)) {
        const double t0 = now_s();
        for (uint32_t r = 0; r < reps[c]; ++r) fns[c]();
        samples[c].push_back((now_s() - t0) / reps[c]);
        ++taken;
      }
    }
  }
  for (auto& s : samples) std::sort(s.begin(), s.end());
  return samples;
}

template <typename Fn>
std::vector<double> time_runs(const SweepOptions& o, Fn&& fn) {
  return time_interleaved(o, {std::function<void()>(fn)})[0];
}

double percentile(const std::vector<double>& sorted, double q) {
  TALLY_ASSERT(!sorted.empty());
  const size_t i = std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())));
  return sorted[i];
}

// ISA-L's own crc32_iscsi over the same ranges: the physical anchor for the checksum op.
void isal_checksum(const kernels::ChecksumBatch& b) {
  for (uint32_t i = 0; i < b.items; ++i) {
    b.crc_out[i] = ~crc32_iscsi(const_cast<uint8_t*>(b.blob + b.offsets[i]), static_cast<int>(b.lengths[i]), 0xffffffffu);
  }
}

}  // namespace

bool parse_op(const std::string& name, Op* out) {
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    if (name == kernels::op_name(static_cast<Op>(o))) {
      *out = static_cast<Op>(o);
      return true;
    }
  }
  return false;
}

drivers::Device* Backends::find(const std::string& name) const {
  for (const auto& [n, d] : devices) {
    if (n == name) return d.get();
  }
  return nullptr;
}

Result<Backends> open_backends(const std::vector<std::string>& names) {
  // One core for the cpu (the cost model's cpu parameters are per core, like the targets they are
  // judged by); the cuda driver's full-size slots, since the sweep goes up to the largest batch.
  const offload::DeviceOptions sizes{.in_flight_max = 1024, .cuda_slot_bytes = uint64_t{256} << 20,
                                     .cuda_scratch_bytes = uint64_t{128} << 20};
  Backends out;
  for (const std::string& name : names) {
    auto dev = offload::open_device(name, sizes);
    if (dev.is_ok()) {
      out.devices.emplace_back(name, std::move(dev).value());
    } else if (dev.status().code() == Code::kUnavailable) {
      out.absent += dev.status().message() + "; ";
    } else {
      return dev.status();
    }
  }
  return out;
}

Status run_sweep(const SweepOptions& o, const PointSink& sink, std::string* log) {
  TALLY_ASSERT(log != nullptr);
  TALLY_ASSERT(o.max_items >= 1);
  std::vector<std::string> device_names;
  bool want_isal = false, want_auto = false;
  for (const std::string& b : o.backends) {
    if (b == "isal") want_isal = true;
    else if (b == "auto") want_auto = true;
    else device_names.push_back(b);
  }
  if (want_auto && std::find(device_names.begin(), device_names.end(), "cpu") == device_names.end()) {
    device_names.insert(device_names.begin(), "cpu");
  }
  Result<Backends> opened = open_backends(device_names);
  if (!opened.is_ok()) return opened.status();
  Backends& backends = opened.value();
  if (!backends.absent.empty()) *log += "absent backends: " + backends.absent + "\n";
  std::unique_ptr<offload::Scheduler> sched;
  if (want_auto) {
    Result<offload::CostModel> model = offload::CostModel::load_or_defaults(o.calibration_path);
    if (!model.is_ok()) {
      *log += "calibration: " + model.status().to_string() + "; using defaults\n";
      model = offload::CostModel::defaults();
    }
    sched = std::make_unique<offload::Scheduler>(model.value(), SystemClock::instance());
    for (auto& [name, dev] : backends.devices) sched->add_device(dev.get());
  }

  Rng rng(o.seed);
  for (Op op : o.ops) {
    const std::vector<uint32_t> sizes = op == Op::kChecksum ? o.checksum_item_bytes
                                        : op == Op::kPartition ? std::vector<uint32_t>{kPartitionKeyBytes}
                                                               : std::vector<uint32_t>{0};
    for (uint32_t item_bytes : sizes) {
      for (uint32_t items : batch_sizes(o.max_items)) {
        if (blob_estimate(op, items, item_bytes) > o.batch_bytes_max) continue;
        kernels::OwnedBatch batch = kernels::OwnedBatch::random(shape_for(op, items, item_bytes), rng);
        const uint64_t bytes = batch.batch().input_bytes();
        auto record = [&](const std::string& backend, const std::vector<double>& s, const std::string& chosen) {
          SweepPoint p{op, backend, items, item_bytes, bytes, 0, 0, percentile(s, 0.5) * 1e6, percentile(s, 0.99) * 1e6, chosen};
          p.items_per_s = items / (p.p50_us * 1e-6);
          p.bytes_per_s = static_cast<double>(bytes) / (p.p50_us * 1e-6);
          return sink(p);
        };
        std::vector<std::string> names;
        std::vector<std::string> chosen;
        std::vector<std::function<void()>> fns;
        for (auto& [name, dev] : backends.devices) {
          drivers::Device* d = dev.get();
          const drivers::OpLimits& lim = d->capabilities().limits(op);
          if (!d->healthy() || !lim.supported || items > lim.items_max || bytes > lim.blob_bytes_max) continue;
          // One checked run first; the timed runs must not pay for checking.
          if (!drivers::run_sync(*d, batch.batch()).is_ok()) {
            *log += std::string("skipped ") + kernels::op_name(op) + " on " + name + ": run failed\n";
            continue;
          }
          names.push_back(name);
          chosen.emplace_back();
          fns.emplace_back([d, &batch] { TALLY_ASSERT(drivers::run_sync(*d, batch.batch()).is_ok()); });
        }
        if (want_isal && op == Op::kChecksum) {
          names.emplace_back("isal");
          chosen.emplace_back();
          fns.emplace_back([&batch] { isal_checksum(batch.batch().checksum); });
        }
        if (sched != nullptr) {
          drivers::Device* c = sched->choose(batch.batch());
          names.emplace_back("auto");
          chosen.emplace_back(c ? drivers::backend_name(c->capabilities().backend) : "none");
          fns.emplace_back([&sched, &batch] { TALLY_ASSERT(sched->run(batch.batch()).is_ok()); });
        }
        const auto samples = time_interleaved(o, fns);
        for (size_t c = 0; c < names.size(); ++c) TALLY_RETURN_IF_ERROR(record(names[c], samples[c], chosen[c]));
      }
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<CsvWriter>> CsvWriter::open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Status::io_error("cannot write " + path);
  std::unique_ptr<CsvWriter> w(new CsvWriter(f, path));
  if (std::fputs(kCsvHeader, f) < 0 || std::fflush(f) != 0) return Status::io_error("short write to " + path);
  return w;
}

CsvWriter::~CsvWriter() { std::fclose(file_); }

Status CsvWriter::add(const SweepPoint& p) {
  const int n = std::fprintf(file_, "%s,%s,%u,%u,%.1f,%.1f,%.3f,%.3f,%s\n", kernels::op_name(p.op), p.backend.c_str(),
                             p.batch_items, p.item_bytes, p.items_per_s, p.bytes_per_s, p.p50_us, p.p99_us,
                             p.chosen.c_str());
  // Flushed per row: a sweep killed at its time limit keeps what it measured.
  if (n < 0 || std::fflush(file_) != 0) return Status::io_error("short write to " + path_);
  return Status::ok();
}

Status write_csv(const std::vector<SweepPoint>& points, const std::string& path) {
  auto w = CsvWriter::open(path);
  if (!w.is_ok()) return w.status();
  for (const SweepPoint& p : points) TALLY_RETURN_IF_ERROR(w.value()->add(p));
  return Status::ok();
}

Result<std::vector<SweepPoint>> read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io_error("cannot read " + path);
  std::string line;
  if (!std::getline(in, line) || line + "\n" != kCsvHeader) return Status::corruption(path + ": not a sweep CSV");
  std::vector<SweepPoint> points;
  for (size_t row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    size_t start = 0;
    while (true) {
      const size_t comma = line.find(',', start);
      f.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    SweepPoint p;
    if (f.size() != kCsvColumns || !parse_op(f[0], &p.op)) {
      return Status::corruption(path + ": row " + std::to_string(row) + " is malformed");
    }
    p.backend = f[1];
    p.batch_items = static_cast<uint32_t>(std::strtoul(f[2].c_str(), nullptr, 10));
    p.item_bytes = static_cast<uint32_t>(std::strtoul(f[3].c_str(), nullptr, 10));
    p.items_per_s = std::strtod(f[4].c_str(), nullptr);
    p.bytes_per_s = std::strtod(f[5].c_str(), nullptr);
    p.p50_us = std::strtod(f[6].c_str(), nullptr);
    p.p99_us = std::strtod(f[7].c_str(), nullptr);
    p.chosen = f[8];
    points.push_back(std::move(p));
  }
  return points;
}

Status write_plots(const std::vector<SweepPoint>& points, const std::string& csv_path, std::string* log) {
  namespace fs = std::filesystem;
  const fs::path csv(csv_path);
  const fs::path dir = csv.parent_path().empty() ? fs::path(".") : csv.parent_path();
  const std::string stem = csv.stem().string();
  const fs::path data_dir = dir / (stem + "-plotdata");
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Status::io_error("cannot create " + data_dir.string());
  // One series per (op, item size, backend); one panel per (op, item size).
  std::map<std::string, std::map<std::string, std::vector<const SweepPoint*>>> panels;
  for (const SweepPoint& p : points) {
    std::string panel = kernels::op_name(p.op);
    if (p.item_bytes != 0) panel.append("-").append(std::to_string(p.item_bytes)).append("B");
    panels[panel][p.backend].push_back(&p);
  }
  const fs::path script = data_dir / "plots.gp";
  std::ofstream gp(script, std::ios::trunc);
  gp << "set terminal pngcairo size 1400,900 noenhanced\nset logscale x 2\nset logscale y 10\nset grid\nset key left top\n";
  for (const char* metric : {"throughput", "latency"}) {
    gp << "set output '" << (dir / (stem + "-" + metric + ".png")).string() << "'\n";
    const size_t n = panels.size();
    const size_t cols = n <= 1 ? 1 : n <= 4 ? 2 : 3;
    gp << "set multiplot layout " << (n + cols - 1) / cols << "," << cols << " title 'offload " << metric << "'\n";
    for (const auto& [panel, series] : panels) {
      gp << "unset arrow\nunset label\nset title '" << panel << "'\nset xlabel 'batch items'\n";
      gp << "set ylabel '" << (std::string(metric) == "throughput" ? "items/s" : "p50 us") << "'\n";
      // Crossover: the first batch size where a backend's p50 beats the CPU's, marked on the x axis.
      auto cpu = series.find("cpu");
      int arrow = 0;
      if (cpu != series.end()) {
        for (const auto& [backend, pts] : series) {
          // isal is an anchor (not a backend the scheduler can pick) and auto is the scheduler itself.
          if (backend == "cpu" || backend == "auto" || backend == "isal") continue;
          for (const SweepPoint* p : pts) {
            auto c = std::find_if(cpu->second.begin(), cpu->second.end(),
                                  [&](const SweepPoint* q) { return q->batch_items == p->batch_items; });
            if (c != cpu->second.end() && p->p50_us < (*c)->p50_us) {
              ++arrow;
              gp << "set arrow " << arrow << " from " << p->batch_items << ", graph 0 to " << p->batch_items
                 << ", graph 1 nohead dt 2\n";
              gp << "set label " << arrow << " '" << backend << " > cpu' at " << p->batch_items << ", graph "
                 << (0.95 - 0.05 * arrow) << "\n";
              if (std::string(metric) == "throughput") {
                *log += "crossover " + panel + ": " + backend + " beats cpu from " + std::to_string(p->batch_items) + " items\n";
              }
              break;
            }
          }
        }
      }
      gp << "plot ";
      bool first = true;
      for (const auto& [backend, pts] : series) {
        const fs::path dat = data_dir / (panel + "-" + backend + ".dat");
        std::ofstream d(dat, std::ios::trunc);
        for (const SweepPoint* p : pts) d << p->batch_items << " " << p->items_per_s << " " << p->p50_us << "\n";
        gp << (first ? "" : ", ") << "'" << dat.string() << "' using 1:" << (std::string(metric) == "throughput" ? 2 : 3)
           << " with linespoints title '" << backend << "'";
        first = false;
      }
      gp << "\n";
    }
    gp << "unset multiplot\n";
  }
  gp.close();
  const std::string cmd = "gnuplot '" + script.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) return Status::unavailable("gnuplot failed on " + script.string());
  return Status::ok();
}

Result<offload::CostModel> calibrate(const std::vector<std::string>& backend_names, std::string* log) {
  TALLY_ASSERT(log != nullptr);
  offload::CostModel model = offload::CostModel::defaults();
  Result<Backends> opened = open_backends(backend_names);
  if (!opened.is_ok()) return opened.status();
  Backends& backends = opened.value();
  if (!backends.absent.empty()) *log += "absent backends: " + backends.absent + "\n";
  SweepOptions o;
  o.seconds_per_point = 0.02;
  o.runs_per_point_max = 200;
  Rng rng(7);
  for (size_t oi = 0; oi < kernels::kOpCount; ++oi) {
    const Op op = static_cast<Op>(oi);
    for (auto& [name, dev] : backends.devices) {
      if (!dev->capabilities().limits(op).supported) continue;
      // Points that separate the three terms: few and many items, small and large items.
      std::vector<offload::CostSample> samples;
      const std::vector<uint32_t> item_sizes = op == Op::kChecksum ? std::vector<uint32_t>{64, 4096} : std::vector<uint32_t>{16};
      for (uint32_t item_bytes : item_sizes) {
        for (uint32_t items : {1u, 64u, 4096u, 65536u}) {
          if (blob_estimate(op, items, item_bytes) > o.batch_bytes_max) continue;
          kernels::OwnedBatch batch = kernels::OwnedBatch::random(shape_for(op, items, item_bytes), rng);
          bool ok = true;
          const auto s = time_runs(o, [&] { ok = ok && drivers::run_sync(*dev, batch.batch()).is_ok(); });
          if (!ok) break;
          samples.push_back({static_cast<double>(items), static_cast<double>(batch.batch().input_bytes()), percentile(s, 0.5) * 1e9});
          if (std::getenv("TALLY_BENCH_VERBOSE") != nullptr) {
            *log += std::string("  sample ") + kernels::op_name(op) + "." + name + " items=" + std::to_string(items) +
                    " bytes=" + std::to_string(batch.batch().input_bytes()) + " ns=" + std::to_string(samples.back().ns) + "\n";
          }
        }
      }
      if (samples.size() < 3) continue;
      drivers::Backend backend;
      TALLY_ASSERT(drivers::parse_backend(name, &backend));
      const offload::CostParams p = offload::fit_cost(samples.data(), samples.size());
      model.set(op, backend, p);
      char line[256];
      char bandwidth[32] = "unbounded";
      if (p.bytes_per_ns < 1e6) std::snprintf(bandwidth, sizeof bandwidth, "%.2f GB/s", p.bytes_per_ns);
      std::snprintf(line, sizeof line, "%s.%s: launch %.0f ns, %.2f ns/item, %s\n", kernels::op_name(op), name.c_str(),
                    p.launch_ns, p.per_item_ns, bandwidth);
      *log += line;
    }
  }
  return model;
}

}  // namespace tally::bench
