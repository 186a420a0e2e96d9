// One deterministic simulation run: a cluster of 3, 5 or 7 nodes hosting several Raft groups
// and an eventual keyspace, a faulty network, disk and clocks, a client workload, and checkers.
#pragma once

#include <memory>
#include <vector>

#include "tests/sim/history.h"
#include "tests/sim/sim_options.h"

namespace tally::sim {

class World;

class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Runs to the end (or the first violation). Call once.
  SimReport run();
  // The strong-keyspace client history of the run (recorded when options.record_history,
  // and always checked for linearizability).
  const std::vector<Operation>& history() const;

 private:
  std::unique_ptr<World> world_;
};

}  // namespace tally::sim
