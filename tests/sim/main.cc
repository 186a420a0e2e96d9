// tally-sim: runs deterministic cluster simulations from seeds and reports violations, each
// with the one command that replays it. See docs/sim.md.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sim/simulation.h"

namespace {

using tally::sim::PlantedBug;
using tally::sim::SimOptions;
using tally::sim::SimReport;

// The replay command of the seed running now, so an assertion that aborts the process (in the
// Raft core, a CRDT or the simulator) still names the seed that triggered it.
char g_replay[256] = "";

extern "C" void on_abort(int sig) {
  static const char kPrefix[] = "tally-sim: aborted; replay: ";
  (void)!write(STDERR_FILENO, kPrefix, sizeof kPrefix - 1);
  (void)!write(STDERR_FILENO, g_replay, std::strlen(g_replay));
  (void)!write(STDERR_FILENO, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void set_replay(const SimOptions& o) {
  std::snprintf(g_replay, sizeof g_replay, "%s", tally::sim::replay_command(o, o.nodes).c_str());
}

int usage() {
  std::fprintf(stderr,
               "usage: tally-sim --seed S [--history FILE] [--nodes 3|5|7] [--bug NAME] [--verbose]\n"
               "       tally-sim --seeds N [--start S] [--nodes 3|5|7] [--bug NAME] [--expect-violation]\n"
               "bugs: count_prior_term_replicas vote_without_persist apply_before_commit\n"
               "      accept_mismatched_prev_term lww_ignore_node_id\n");
  return 2;
}

bool parse_u64(const char* s, uint64_t& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && end != s && *end == '\0';
}

void print_violation(const SimOptions& o, const SimReport& r) {
  std::printf("seed %llu: VIOLATION of %s (%u nodes, %u groups, %llu ms simulated)\n  %s\n  replay: %s\n",
              static_cast<unsigned long long>(o.seed), r.kind.c_str(), r.nodes, r.groups,
              static_cast<unsigned long long>(r.simulated_ms), r.detail.c_str(),
              tally::sim::replay_command(o, r.nodes).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  SimOptions base;
  uint64_t seed = 0, seeds = 0, start = 1;
  bool single = false, expect_violation = false, verbose = false;
  const char* history_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    uint64_t n = 0;
    if (std::strcmp(a, "--seed") == 0 && v && parse_u64(v, seed)) single = true, ++i;
    else if (std::strcmp(a, "--seeds") == 0 && v && parse_u64(v, seeds)) ++i;
    else if (std::strcmp(a, "--start") == 0 && v && parse_u64(v, start)) ++i;
    else if (std::strcmp(a, "--nodes") == 0 && v && parse_u64(v, n) && (n == 3 || n == 5 || n == 7)) {
      base.nodes = static_cast<uint32_t>(n);
      ++i;
    } else if (std::strcmp(a, "--history") == 0 && v) history_path = v, ++i;
    else if (std::strcmp(a, "--bug") == 0 && v) {
      auto bug = tally::sim::parse_planted_bug(v);
      if (!bug) return usage();
      base.bug = *bug;
      ++i;
    } else if (std::strcmp(a, "--expect-violation") == 0) expect_violation = true;
    else if (std::strcmp(a, "--verbose") == 0) verbose = true;
    else return usage();
  }
  if (single == (seeds != 0)) return usage();
  std::signal(SIGABRT, on_abort);

  if (single) {
    SimOptions o = base;
    o.seed = seed;
    o.record_history = history_path != nullptr;
    set_replay(o);
    tally::sim::Simulation sim(o);
    const SimReport r = sim.run();
    if (history_path) {
      tally::Status st = tally::sim::write_history(history_path, sim.history());
      if (!st.is_ok()) {
        std::fprintf(stderr, "%s\n", st.to_string().c_str());
        return 1;
      }
    }
    std::printf("seed %llu: %u nodes, %u groups, %llu ms simulated, %llu client ops, %llu eventual writes, "
                "%llu messages, %llu committed, %llu crashes, %llu hlc rejections, %llu lin steps\n",
                static_cast<unsigned long long>(seed), r.nodes, r.groups,
                static_cast<unsigned long long>(r.simulated_ms), static_cast<unsigned long long>(r.client_ops),
                static_cast<unsigned long long>(r.eventual_ops), static_cast<unsigned long long>(r.messages),
                static_cast<unsigned long long>(r.committed), static_cast<unsigned long long>(r.crashes),
                static_cast<unsigned long long>(r.hlc_rejected), static_cast<unsigned long long>(r.lin_steps));
    if (r.violation) {
      print_violation(o, r);
      return 1;
    }
    return 0;
  }

  // Wall time only for the throughput line; it never feeds the simulation.
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t violations = 0, ops = 0, sim_ms = 0, ran = 0;
  for (uint64_t s = start; s < start + seeds; ++s) {
    SimOptions o = base;
    o.seed = s;
    set_replay(o);
    tally::sim::Simulation sim(o);
    const SimReport r = sim.run();
    ++ran;
    ops += r.client_ops + r.eventual_ops;
    sim_ms += r.simulated_ms;
    if (verbose) {
      std::printf("seed %llu: %u nodes, %llu client ops, %llu committed, %llu crashes, %llu prior-term commits\n",
                  static_cast<unsigned long long>(s), r.nodes, static_cast<unsigned long long>(r.client_ops),
                  static_cast<unsigned long long>(r.committed), static_cast<unsigned long long>(r.crashes),
                  static_cast<unsigned long long>(r.prior_term_commits));
    }
    if (r.violation) {
      ++violations;
      print_violation(o, r);
      if (expect_violation) {
        std::printf("planted bug %s caught after %llu seeds\n", tally::sim::planted_bug_name(base.bug),
                    static_cast<unsigned long long>(ran));
        return 0;
      }
    }
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%.1f s wall, %.1f seeds/s, %.0f simulated ops/s, %llu simulated ms\n", wall_s,
               static_cast<double>(ran) / wall_s, static_cast<double>(ops) / wall_s,
               static_cast<unsigned long long>(sim_ms));
  if (expect_violation) {
    std::printf("planted bug %s NOT caught in %llu seeds\n", tally::sim::planted_bug_name(base.bug),
                static_cast<unsigned long long>(ran));
    return 1;
  }
  std::printf("%llu seeds, %llu violations\n", static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(violations));
  return violations == 0 ? 0 : 1;
}
