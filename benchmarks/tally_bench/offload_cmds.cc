// tally-bench offload and calibrate: argument parsing around benchmarks/offload/sweep.h.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/offload/sweep.h"
#include "benchmarks/tally_bench/commands.h"

namespace tally::bench {

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

bool parse_u32(const char* s, uint32_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0' || v == 0 || v > 0xffffffffull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

const char* kOffloadHelp =
    "usage: tally-bench offload [--ops checksum,partition,resolve,tally,merkle]\n"
    "                           [--backends cpu,cuda,fpga_sim,isal,auto] [--max-items N]\n"
    "                           [--item-bytes 64,1024,16384] [--seconds-per-point S]\n"
    "                           [--calibration FILE] --csv FILE [--no-plots]\n"
    "Writes op,backend,batch_items,item_bytes,items_per_s,bytes_per_s,p50_us,p99_us,chosen (row by\n"
    "row, flushed) and <csv stem>-throughput.png / -latency.png (gnuplot) with crossovers marked.\n";

}  // namespace

int offload_main(int argc, char** argv) {
  SweepOptions o;
  o.ops = {Op::kChecksum, Op::kPartition, Op::kResolve, Op::kTally, Op::kMerkle};
  o.backends = {"cpu", "cuda", "fpga_sim", "isal", "auto"};
  std::string csv;
  bool plots = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--help" || a == "-h") {
      std::fputs(kOffloadHelp, stdout);
      return 0;
    } else if (a == "--ops" && has_value) {
      o.ops.clear();
      for (const std::string& name : split(argv[++i])) {
        Op op;
        if (!parse_op(name, &op)) {
          std::fprintf(stderr, "unknown op '%s'\n", name.c_str());
          return 2;
        }
        o.ops.push_back(op);
      }
    } else if (a == "--backends" && has_value) {
      o.backends = split(argv[++i]);
    } else if (a == "--max-items" && has_value) {
      if (!parse_u32(argv[++i], &o.max_items)) return std::fputs("bad --max-items\n", stderr), 2;
    } else if (a == "--item-bytes" && has_value) {
      o.checksum_item_bytes.clear();
      for (const std::string& s : split(argv[++i])) {
        uint32_t v = 0;
        if (!parse_u32(s.c_str(), &v)) return std::fputs("bad --item-bytes\n", stderr), 2;
        o.checksum_item_bytes.push_back(v);
      }
    } else if (a == "--seconds-per-point" && has_value) {
      o.seconds_per_point = std::atof(argv[++i]);
    } else if (a == "--calibration" && has_value) {
      o.calibration_path = argv[++i];
    } else if (a == "--csv" && has_value) {
      csv = argv[++i];
    } else if (a == "--no-plots") {
      plots = false;
    } else {
      std::fprintf(stderr, "unknown or incomplete option '%s'\n%s", a.c_str(), kOffloadHelp);
      return 2;
    }
  }
  if (csv.empty()) return std::fputs(kOffloadHelp, stderr), 2;
  auto writer = CsvWriter::open(csv);
  if (!writer.is_ok()) {
    std::fprintf(stderr, "tally-bench offload: %s\n", writer.status().to_string().c_str());
    return 1;
  }
  std::string log;
  std::vector<SweepPoint> points;
  Status st = run_sweep(o, [&](const SweepPoint& p) {
    points.push_back(p);
    // One line per point as it is measured, for a log read while the sweep runs (or after a kill).
    std::printf("%s %s items=%u item_bytes=%u p50_us=%.3f\n", kernels::op_name(p.op), p.backend.c_str(), p.batch_items,
                p.item_bytes, p.p50_us);
    std::fflush(stdout);
    return writer.value()->add(p);
  }, &log);
  if (st.is_ok() && plots) st = write_plots(points, csv, &log);
  std::fputs(log.c_str(), stdout);
  std::printf("%zu points -> %s\n", points.size(), csv.c_str());
  if (!st.is_ok()) {
    std::fprintf(stderr, "tally-bench offload: %s\n", st.to_string().c_str());
    return 1;
  }
  return 0;
}

int plot_main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "--csv") != 0) {
    std::fputs("usage: tally-bench plot --csv FILE   (the PNGs of a sweep's CSV, e.g. one from a GPU run)\n",
               argc == 2 && std::strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return argc == 2 && std::strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  auto points = read_csv(argv[2]);
  std::string log;
  Status st = points.is_ok() ? write_plots(points.value(), argv[2], &log) : points.status();
  std::fputs(log.c_str(), stdout);
  if (!st.is_ok()) {
    std::fprintf(stderr, "tally-bench plot: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("%zu points plotted next to %s\n", points.value().size(), argv[2]);
  return 0;
}

int calibrate_main(int argc, char** argv) {
  std::string out_path = "tally-offload.toml";
  std::vector<std::string> backends = {"cpu", "cuda", "fpga_sim"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_path = argv[++i];
    } else if (a == "--backends" && i + 1 < argc) {
      backends = split(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: tally-bench calibrate [--backends cpu,cuda,fpga_sim] [--out FILE]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  std::string log;
  Result<offload::CostModel> model = calibrate(backends, &log);
  std::fputs(log.c_str(), stdout);
  if (!model.is_ok()) {
    std::fprintf(stderr, "tally-bench calibrate: %s\n", model.status().to_string().c_str());
    return 1;
  }
  const Status st = model->save(out_path);
  if (!st.is_ok()) {
    std::fprintf(stderr, "tally-bench calibrate: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

}  // namespace tally::bench
