// tally-sim: runs deterministic cluster simulations from seeds and reports violations, each
// with the one command that replays it. See docs/sim.md.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "host/replication/raft/mutant.h"
#include "tests/sim/linearizability.h"
#include "tests/sim/simulation.h"

namespace {

using tally::raft::Mutant;
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

// The replay command, naming the mutant this binary runs, if any.
std::string replay(const SimOptions& o, uint32_t nodes) {
  std::string cmd = tally::sim::replay_command(o, nodes);
  if (tally::raft::active_mutant() != Mutant::none) {
    cmd += std::string(" --mutant ") + tally::raft::mutant_name(tally::raft::active_mutant());
  }
  return cmd;
}

void set_replay(const SimOptions& o) { std::snprintf(g_replay, sizeof g_replay, "%s", replay(o, o.nodes).c_str()); }

int usage() {
  std::fprintf(stderr,
               "usage: tally-sim --seed S [--history FILE] [--nodes 3|5|7] [--bug NAME] [--mutant NAME]\n"
               "       tally-sim --check-history FILE   (a recorded history: exit 0 linearizable, 1 not)\n"
               "       tally-sim --seeds N [--start S] [--nodes 3|5|7] [--bug NAME] [--mutant NAME]\n"
               "                 [--expect-violation] [--verbose]\n"
               "bugs: count_prior_term_replicas vote_without_persist apply_before_commit\n"
               "      accept_mismatched_prev_term lww_ignore_node_id serve_corrupt_log skip_fsync\n"
               "      bad_header_spares_its_group\n"
               "mutants (tests/mutants/catalogue.txt): a build with TALLY_MUTANT_NAME runs its one\n"
               "      mutant; tally-sim-mutants takes --mutant NAME\n");
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
              static_cast<unsigned long long>(r.simulated_ms), r.detail.c_str(), replay(o, r.nodes).c_str());
}

// What --expect-violation waits for: a planted bug (--bug) or this binary's mutant.
std::string planted(const SimOptions& o) {
  if (tally::raft::active_mutant() != Mutant::none) {
    return std::string("mutant ") + tally::raft::mutant_name(tally::raft::active_mutant());
  }
  return std::string("planted bug ") + tally::sim::planted_bug_name(o.bug);
}

void print_shape(const SimReport& r) {
  std::printf("  shape: leases %s, check-quorum %s, pre-vote %s, tally %s, leader sends %s; %llu pauses, %llu transfers, %llu joins, "
              "%llu leaves, %u learners at most, %llu snapshots installed; %llu lease reads, %llu failed reads, "
              "%llu writes unknown; %llu requests to deposed leaders, %llu stale-leader reads ok\n"
              "  disk: %llu faults injected, %llu log failures, %llu retries, %llu torn tails truncated, %llu logs "
              "damaged, %llu replicas kept down, %llu membership records lost before sync, %llu segments deleted\n",
              r.leases ? "on" : "off", r.check_quorum ? "on" : "off", r.pre_vote ? "on" : "off",
              r.async_tally ? "async" : "inline", r.early_send ? "before persisting" : "after persisting",
              static_cast<unsigned long long>(r.pauses),
              static_cast<unsigned long long>(r.transfers), static_cast<unsigned long long>(r.joins),
              static_cast<unsigned long long>(r.leaves), r.learners_max,
              static_cast<unsigned long long>(r.snapshots_installed), static_cast<unsigned long long>(r.lease_reads),
              static_cast<unsigned long long>(r.failed_reads), static_cast<unsigned long long>(r.writes_unknown),
              static_cast<unsigned long long>(r.stale_leader_requests),
              static_cast<unsigned long long>(r.stale_leader_reads_ok), static_cast<unsigned long long>(r.disk_faults),
              static_cast<unsigned long long>(r.disk_failures), static_cast<unsigned long long>(r.log_retries),
              static_cast<unsigned long long>(r.torn_tails), static_cast<unsigned long long>(r.logs_damaged),
              static_cast<unsigned long long>(r.replicas_kept_down),
              static_cast<unsigned long long>(r.conf_change_crashes),
              static_cast<unsigned long long>(r.segments_deleted));
}

// How many seeds had each situation the checkers depend on.
struct Shares {
  uint64_t leases = 0, no_check_quorum = 0, async_tally = 0, early_send = 0, paused = 0, transferred = 0, joined = 0, left = 0;
  uint64_t two_learners = 0, snapshots = 0, lease_reads = 0, stale_window = 0;
  uint64_t stale_requests = 0, stale_reads_ok = 0;
  uint64_t disk_failures = 0, log_retries = 0, torn_tails = 0, damaged = 0, kept_down = 0, conf_lost = 0;
  uint64_t segments_deleted = 0;

  void add(const SimReport& r) {
    leases += r.leases ? 1 : 0;
    no_check_quorum += r.check_quorum ? 0 : 1;
    async_tally += r.async_tally ? 1 : 0;
    early_send += r.early_send ? 1 : 0;
    paused += r.pauses > 0 ? 1 : 0;
    transferred += r.transfers > 0 ? 1 : 0;
    joined += r.joins > 0 ? 1 : 0;
    left += r.leaves > 0 ? 1 : 0;
    two_learners += r.learners_max >= 2 ? 1 : 0;
    snapshots += r.snapshots_installed > 0 ? 1 : 0;
    lease_reads += r.lease_reads > 0 ? 1 : 0;
    stale_window += r.stale_leader_requests > 0 ? 1 : 0;
    stale_requests += r.stale_leader_requests;
    stale_reads_ok += r.stale_leader_reads_ok;
    disk_failures += r.disk_failures > 0 ? 1 : 0;
    log_retries += r.log_retries > 0 ? 1 : 0;
    torn_tails += r.torn_tails > 0 ? 1 : 0;
    damaged += r.logs_damaged > 0 ? 1 : 0;
    kept_down += r.replicas_kept_down > 0 ? 1 : 0;
    conf_lost += r.conf_change_crashes > 0 ? 1 : 0;
    segments_deleted += r.segments_deleted > 0 ? 1 : 0;
  }
  void print(uint64_t seeds) const {
    if (seeds == 0) return;
    auto pct = [&](uint64_t n) { return 100.0 * static_cast<double>(n) / static_cast<double>(seeds); };
    std::printf("seeds with: leases %.0f%% (lease reads served in %.0f%%), check-quorum off %.0f%%, async tally %.0f%%, "
                "leaders sending before persisting %.0f%%, "
                "pauses %.0f%%, transfers %.0f%%, joins %.0f%%, leaves %.0f%%, two or more learners %.0f%%, "
                "snapshot installs %.0f%%\n",
                pct(leases), pct(lease_reads), pct(no_check_quorum), pct(async_tally), pct(early_send), pct(paused),
                pct(transferred),
                pct(joined), pct(left), pct(two_learners), pct(snapshots));
    std::printf("stale-leader window (a deposed leader got client requests) in %.1f%% of seeds: %llu requests, "
                "%llu reads it answered ok\n",
                pct(stale_window), static_cast<unsigned long long>(stale_requests),
                static_cast<unsigned long long>(stale_reads_ok));
    std::printf("disk (the write-ahead log over a simulated file system): log failures %.0f%% (retried in %.0f%%), "
                "torn tails %.0f%%, damaged logs %.0f%% (replicas kept down in %.0f%%), membership records lost "
                "before sync %.0f%%, segments deleted %.0f%%\n",
                pct(disk_failures), pct(log_retries), pct(torn_tails), pct(damaged), pct(kept_down), pct(conf_lost),
                pct(segments_deleted));
  }
};

}  // namespace

// tally-sim --check-history FILE: checks a history another tool recorded (docs/history-format.md),
// e.g. the cluster tests' clients against real tallyd members. Exit 0 linearizable, 1 not, 2 unusable.
int check_history_file(const char* path) {
  auto ops = tally::sim::read_history(path);
  if (!ops.is_ok()) {
    std::fprintf(stderr, "tally-sim: %s: %s\n", path, ops.status().message().c_str());
    return 2;
  }
  const tally::sim::CheckResult r = tally::sim::check_history(*ops);
  std::printf("%s: %s (%llu operations checked over %llu keys, %llu search steps)%s%s\n", path,
              tally::sim::verdict_name(r.verdict), static_cast<unsigned long long>(r.ops),
              static_cast<unsigned long long>(r.keys), static_cast<unsigned long long>(r.steps),
              r.detail.empty() ? "" : "\n  ", r.detail.c_str());
  return r.verdict == tally::sim::Verdict::kLinearizable ? 0 : r.verdict == tally::sim::Verdict::kNotLinearizable ? 1 : 2;
}

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--check-history") == 0) return check_history_file(argv[2]);
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
    } else if (std::strcmp(a, "--mutant") == 0 && v) {
      const auto m = tally::raft::parse_mutant(v);
      if (!m) return usage();
      if (!tally::raft::select_mutant(*m)) {
        std::fprintf(stderr, "tally-sim: this build cannot run mutant %s (it runs %s); use tally-sim-mutants\n", v,
                     tally::raft::mutant_name(tally::raft::active_mutant()));
        return 2;
      }
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
    print_shape(r);
    if (r.violation) {
      print_violation(o, r);
      return 1;
    }
    return 0;
  }

  // Wall time only for the throughput line; it never feeds the simulation.
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t violations = 0, ops = 0, sim_ms = 0, ran = 0;
  Shares shares;
  for (uint64_t s = start; s < start + seeds; ++s) {
    SimOptions o = base;
    o.seed = s;
    set_replay(o);
    tally::sim::Simulation sim(o);
    const SimReport r = sim.run();
    ++ran;
    ops += r.client_ops + r.eventual_ops;
    sim_ms += r.simulated_ms;
    shares.add(r);
    if (verbose) {
      std::printf("seed %llu: %u nodes, %llu client ops, %llu committed, %llu crashes, %llu prior-term commits\n",
                  static_cast<unsigned long long>(s), r.nodes, static_cast<unsigned long long>(r.client_ops),
                  static_cast<unsigned long long>(r.committed), static_cast<unsigned long long>(r.crashes),
                  static_cast<unsigned long long>(r.prior_term_commits));
      print_shape(r);
    }
    if (r.violation) {
      ++violations;
      print_violation(o, r);
      if (expect_violation) {
        std::printf("%s caught after %llu seeds\n", planted(base).c_str(), static_cast<unsigned long long>(ran));
        return 0;
      }
    }
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%.1f s wall, %.1f seeds/s, %.0f simulated ops/s, %llu simulated ms\n", wall_s,
               static_cast<double>(ran) / wall_s, static_cast<double>(ops) / wall_s,
               static_cast<unsigned long long>(sim_ms));
  shares.print(ran);
  if (expect_violation) {
    std::printf("%s NOT caught in %llu seeds\n", planted(base).c_str(), static_cast<unsigned long long>(ran));
    return 1;
  }
  std::printf("%llu seeds, %llu violations\n", static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(violations));
  return violations == 0 ? 0 : 1;
}
