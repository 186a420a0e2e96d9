// Cost model defaults, least-squares fit and the TOML calibration file.
#include "host/offload/cost_model.h"

#include <toml.hpp>

#include <algorithm>
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
  ns_per_byte_[index(op, backend)] = 1.0 / p.bytes_per_ns;
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

namespace {
// Weighted least squares of ns on the chosen columns of (1, items, bytes); false when the system is singular.
bool solve_least_squares(const CostSample* samples, size_t count, const bool use[3], double coef[3]) {
  int cols[3];
  int n = 0;
  for (int c = 0; c < 3; ++c) {
    coef[c] = 0;
    if (use[c]) cols[n++] = c;
  }
  TALLY_ASSERT(n >= 1 && n <= 3);
  // Rows are weighted by 1/ns: samples span orders of magnitude and the model should be off by a
  // similar fraction at every size, not fit the largest batch and miss the small ones.
  double m[3][4] = {};
  for (size_t i = 0; i < count; ++i) {
    const double w = 1.0 / std::max(samples[i].ns, 1.0);
    const double x[3] = {w, samples[i].items * w, samples[i].bytes * w};
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) m[r][c] += x[cols[r]] * x[cols[c]];
      m[r][n] += x[cols[r]] * samples[i].ns * w;
    }
  }
  // Gauss-Jordan with partial pivoting; a pivot tiny relative to its column means collinear inputs.
  for (int col = 0; col < n; ++col) {
    double scale = 0;
    for (int r = 0; r < n; ++r) scale = std::max(scale, std::fabs(m[r][col]));
    int pivot = col;
    for (int r = col + 1; r < n; ++r) if (std::fabs(m[r][col]) > std::fabs(m[pivot][col])) pivot = r;
    for (int c = 0; c <= n; ++c) std::swap(m[col][c], m[pivot][c]);
    if (scale == 0 || std::fabs(m[col][col]) < 1e-9 * scale) return false;
    for (int r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = m[r][col] / m[col][col];
      for (int c = 0; c <= n; ++c) m[r][c] -= f * m[col][c];
    }
  }
  for (int r = 0; r < n; ++r) coef[cols[r]] = m[r][n] / m[r][r];
  return true;
}
}  // namespace

CostParams fit_cost(const CostSample* samples, size_t count) {
  TALLY_ASSERT(samples != nullptr && count >= 3);
  // Try the full model, then drop terms that come out negative or cannot be separated (bytes that
  // grow in lockstep with items fold into per_item); the launch-only model always solves.
  const bool models[6][3] = {{true, true, true},  {true, true, false},  {true, false, true},
                             {false, true, true}, {false, true, false}, {true, false, false}};
  double coef[3] = {0, 0, 0};
  for (const auto& use : models) {
    if (solve_least_squares(samples, count, use, coef) && coef[0] >= 0 && coef[1] >= 0 && coef[2] >= 0) break;
  }
  CostParams p;
  p.launch_ns = std::max(0.0, coef[0]);
  p.per_item_ns = std::max(0.0, coef[1]);
  // No byte term: bandwidth is not what limits this backend, so make it effectively infinite.
  p.bytes_per_ns = coef[2] > 1e-12 ? 1.0 / coef[2] : 1e9;
  p.measured = true;
  TALLY_ASSERT(p.launch_ns >= 0 && p.bytes_per_ns > 0);
  return p;
}

}  // namespace tally::offload
