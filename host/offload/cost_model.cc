// Cost model defaults, least-squares fit and the TOML calibration file.
#include "host/offload/cost_model.h"

#include <toml.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace tally::offload {

CostModel CostModel::defaults() {
  CostModel m;
  for (size_t o = 0; o < kOpCount; ++o) {
    const Op op = static_cast<Op>(o);
    // CPU: sub-microsecond launch, ~20 GB/s CRC32C per core (ISA-L), a few ns per item of bookkeeping.
    m.set(op, Backend::kCpu, {200, op == Op::kChecksum ? 5.0 : 30.0, 20.0, false});
    m.set(op, Backend::kIsal, {100, 5.0, 20.0, false});
    // CUDA: tens of microseconds per batch, PCIe ~20 GB/s, cheap items.
    m.set(op, Backend::kCuda, {40'000, 0.2, 20.0, false});
    // FPGA: DMA setup per batch, 32 bytes per cycle at 250 MHz.
    m.set(op, Backend::kXrt, {20'000, 4.0, 8.0, false});
    // The Verilator model is a simulation: slow per item, only ever chosen when calibrated so.
    m.set(op, Backend::kFpgaSim, {100'000, 2'000.0, 0.01, false});
  }
  return m;
}

void CostModel::set(Op op, Backend backend, const CostParams& p) {
  TALLY_ASSERT(p.launch_ns >= 0 && p.per_item_ns >= 0);
  TALLY_ASSERT(p.bytes_per_ns > 0);
  table_[index(op, backend)] = p;
}

double CostModel::predict_ns(Op op, Backend backend, uint64_t items, uint64_t bytes) const {
  const CostParams& p = table_[index(op, backend)];
  TALLY_ASSERT(p.bytes_per_ns > 0);
  const double ns = p.launch_ns + static_cast<double>(items) * p.per_item_ns + static_cast<double>(bytes) / p.bytes_per_ns;
  TALLY_ASSERT(ns >= 0);
  return ns;
}

Result<CostModel> CostModel::load(const std::string& path) {
  CostModel m = defaults();
  toml::value root;
  try {
    root = toml::parse(path);
  } catch (const std::exception& e) {
    return Status::invalid("calibration file " + path + ": " + e.what());
  }
  for (size_t o = 0; o < kOpCount; ++o) {
    const Op op = static_cast<Op>(o);
    if (!root.contains(kernels::op_name(op))) continue;
    const toml::value& per_op = root.at(kernels::op_name(op));
    for (size_t b = 0; b < kBackendCount; ++b) {
      const Backend backend = static_cast<Backend>(b);
      if (!per_op.is_table() || !per_op.contains(drivers::backend_name(backend))) continue;
      const toml::value& t = per_op.at(drivers::backend_name(backend));
      CostParams p;
      try {
        p.launch_ns = toml::get<double>(t.at("launch_ns"));
        p.per_item_ns = toml::get<double>(t.at("per_item_ns"));
        p.bytes_per_ns = toml::get<double>(t.at("bytes_per_ns"));
      } catch (const std::exception& e) {
        return Status::invalid("calibration file " + path + ": " + e.what());
      }
      if (!(p.launch_ns >= 0) || !(p.per_item_ns >= 0) || !(p.bytes_per_ns > 0)) {
        return Status::invalid("calibration file " + path + ": negative or zero parameter");
      }
      p.measured = true;
      m.set(op, backend, p);
    }
  }
  return m;
}

Result<CostModel> CostModel::load_or_defaults(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) return defaults();
  return load(path);
}

Status CostModel::save(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status::io_error("cannot write " + path);
  out << "# Offload cost model: t = launch_ns + items * per_item_ns + bytes / bytes_per_ns.\n"
         "# Written by `tally-bench calibrate`; only measured entries are listed.\n";
  for (size_t o = 0; o < kOpCount; ++o) {
    for (size_t b = 0; b < kBackendCount; ++b) {
      const CostParams& p = table_[o * kBackendCount + b];
      if (!p.measured) continue;
      char line[256];
      std::snprintf(line, sizeof line, "\n[%s.%s]\nlaunch_ns = %.3f\nper_item_ns = %.6f\nbytes_per_ns = %.6f\n",
                    kernels::op_name(static_cast<Op>(o)), drivers::backend_name(static_cast<Backend>(b)),
                    p.launch_ns, p.per_item_ns, p.bytes_per_ns);
      out << line;
    }
  }
  out.close();
  if (!out) return Status::io_error("short write to " + path);
  return Status::ok();
}

CostParams fit_cost(const CostSample* samples, size_t count) {
  TALLY_ASSERT(samples != nullptr && count >= 3);
  // Normal equations for ns = a + b * items + c * bytes.
  double m[3][4] = {};
  for (size_t i = 0; i < count; ++i) {
    const double x[3] = {1.0, samples[i].items, samples[i].bytes};
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) m[r][c] += x[r] * x[c];
      m[r][3] += x[r] * samples[i].ns;
    }
  }
  // Gaussian elimination with partial pivoting; a singular column (e.g. bytes always 0) gets 0.
  double coef[3] = {0, 0, 0};
  int order[3] = {0, 1, 2};
  for (int col = 0; col < 3; ++col) {
    int pivot = col;
    for (int r = col + 1; r < 3; ++r) if (std::fabs(m[r][col]) > std::fabs(m[pivot][col])) pivot = r;
    for (int c = 0; c < 4; ++c) std::swap(m[col][c], m[pivot][c]);
    if (std::fabs(m[col][col]) < 1e-12) continue;
    for (int r = 0; r < 3; ++r) {
      if (r == col) continue;
      const double f = m[r][col] / m[col][col];
      for (int c = 0; c < 4; ++c) m[r][c] -= f * m[col][c];
    }
  }
  for (int r = 0; r < 3; ++r) coef[order[r]] = std::fabs(m[r][r]) < 1e-12 ? 0 : m[r][3] / m[r][r];
  CostParams p;
  p.launch_ns = std::max(0.0, coef[0]);
  p.per_item_ns = std::max(0.0, coef[1]);
  // A non-positive byte cost means bandwidth is not the limit: make it effectively infinite.
  p.bytes_per_ns = coef[2] > 1e-9 ? 1.0 / coef[2] : 1e9;
  p.measured = true;
  return p;
}

}  // namespace tally::offload
