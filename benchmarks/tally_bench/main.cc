// tally-bench: the project's benchmark binary. One subcommand per area; `offload` sweeps the offload
// backends, `calibrate` writes the cost model's calibration file. Other teams add their subcommands here.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/tally_bench/commands.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

constexpr Subcommand kSubcommands[] = {
    {"offload", "sweep op x backend x batch size x item size; CSV and PNG plots", tally::bench::offload_main},
    {"calibrate", "measure the offload cost model and write the calibration file", tally::bench::calibrate_main},
    {"plot", "the PNG plots of an offload sweep's CSV (one made on another machine)", tally::bench::plot_main},
};

int usage(FILE* out) {
  std::fprintf(out, "usage: tally-bench <subcommand> [options]   (tally-bench <subcommand> --help)\n");
  for (const Subcommand& s : kSubcommands) std::fprintf(out, "  %-10s %s\n", s.name, s.summary);
  return out == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr);
  if (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) return usage(stdout);
  for (const Subcommand& s : kSubcommands) {
    if (std::strcmp(argv[1], s.name) == 0) return s.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "tally-bench: unknown subcommand '%s'\n", argv[1]);
  return usage(stderr);
}
