// The offload sweep: op x backend x batch size x item size, timed per batch (p50/p99), written as CSV
// and plotted with gnuplot; also the measurements `tally-bench calibrate` fits the cost model to.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "drivers/device.h"
#include "host/offload/cost_model.h"

namespace tally::bench {

using drivers::Backend;
using kernels::Op;

struct SweepPoint {
  Op op = Op::kChecksum;
  std::string backend;  // cpu, cuda, fpga_sim, isal, auto
  uint32_t batch_items = 0;
  uint32_t item_bytes = 0;  // checksum/partition range bytes; the fixed record size for other ops
  uint64_t batch_bytes = 0;  // input bytes per batch
  double items_per_s = 0;
  double bytes_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::string chosen;  // for backend "auto": the backend the scheduler picked
};

struct SweepOptions {
  std::vector<Op> ops;
  std::vector<std::string> backends;
  uint32_t max_items = 1u << 20;
  std::vector<uint32_t> checksum_item_bytes = {64, 1024, 16384};
  uint64_t batch_bytes_max = uint64_t{256} << 20;  // skip points whose blob would exceed this
  double seconds_per_point = 0.05;                  // time budget per point (at least 3 runs)
  uint32_t runs_per_point_max = 2000;
  uint64_t seed = 42;
  std::string calibration_path;  // for backend "auto"
};

// The backends that can run here, by name; absent ones (no GPU, no fpga_sim build) are left out.
// A backend that must not be absent (cuda under TALLY_REQUIRE_GPU=1) is an error instead.
struct Backends {
  std::vector<std::pair<std::string, std::unique_ptr<drivers::Device>>> devices;
  drivers::Device* find(const std::string& name) const;
  std::string absent;  // "cuda: device discovery failed: ...; ..." for the log
};
Result<Backends> open_backends(const std::vector<std::string>& names);

// Runs the sweep, handing each point to `sink` as soon as it is measured (a sink error stops it).
using PointSink = std::function<Status(const SweepPoint&)>;
Status run_sweep(const SweepOptions& options, const PointSink& sink, std::string* log);

// The sweep's CSV, written and flushed row by row, so a run cut short keeps every finished point.
class CsvWriter {
 public:
  static Result<std::unique_ptr<CsvWriter>> open(const std::string& path);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  Status add(const SweepPoint& p);

 private:
  CsvWriter(std::FILE* f, std::string path) : file_(f), path_(std::move(path)) {}
  std::FILE* file_;
  std::string path_;
};
Status write_csv(const std::vector<SweepPoint>& points, const std::string& path);
// Reads a CSV that write_csv or CsvWriter wrote (to plot it on another machine).
Result<std::vector<SweepPoint>> read_csv(const std::string& path);
// PNGs next to the CSV (<stem>-throughput.png, <stem>-latency.png), one panel per op and item size,
// with each crossover (the first batch size where another backend beats the CPU) marked.
Status write_plots(const std::vector<SweepPoint>& points, const std::string& csv_path, std::string* log);

// Fits launch/per-item/bandwidth per (op, backend) from a short sweep.
Result<offload::CostModel> calibrate(const std::vector<std::string>& backends, std::string* log);

bool parse_op(const std::string& name, Op* out);

}  // namespace tally::bench
