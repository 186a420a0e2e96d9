// A durable node's start: the data directory's NODE file (the partition count, fixed at first start),
// each partition's newest snapshot loaded into its store, then every shard's log read back
// (docs/wal-format.md): what each partition's replica group starts from.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/replication/group/start.h"
#include "host/replication/raft/types.h"
#include "host/server/partition.h"
#include "host/wal/recovery.h"

namespace tally::server {

// What one partition's group starts from: its store holds the state at snapshot_index.
struct PartitionStart : group::GroupStart {
  std::string snapshot_path;     // empty: no snapshot, an empty store
  uint32_t log_dir = UINT32_MAX;  // the shard directory its records were found in
};

struct NodeStart {
  std::vector<PartitionStart> partitions;  // by partition id
  std::map<uint32_t, uint64_t> log_dirs;   // shard directory number -> records found
  std::map<uint32_t, wal::RecoveryResult> logs;  // what each shard directory's log held
  uint64_t next_seq = 1;                   // every new segment is numbered after all existing ones
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t snapshots_loaded = 0;
  uint64_t keys_loaded = 0;
  std::vector<std::string> notes;          // torn tails truncated, snapshots skipped, corruption
};

std::string wal_dir(const std::string& dir, uint32_t shard);

// Checks (or, at first start, writes) `dir`/NODE: a directory made with another partition count is
// refused, naming both counts. Returns the node's id, made at first start and kept from then on.
Result<std::string> check_node_file(Env& env, const std::string& dir, uint32_t partitions);

// Loads each partition's newest snapshot that verifies into `stores[p]` (an older one when the newest
// is damaged), then reads every shard log under `dir`/wal. `stores` holds every partition's store.
Status recover_node(Env& env, const std::string& dir, std::vector<store::Store*> stores, NodeStart& out);

}  // namespace tally::server
