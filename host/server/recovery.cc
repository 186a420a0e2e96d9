#include "host/server/recovery.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "host/cluster/slot_map.h"
#include "host/common/log.h"
#include "host/store/snapshot_file.h"
#include "host/wal/recovery.h"

namespace tally::server {

namespace {

constexpr uint32_t kNodeFormat = 1;

// The partition's newest snapshot that verifies, loaded into `store`.
void load_newest_snapshot(Env& env, const std::string& dir, uint32_t p, store::Store& store, PartitionStart& ps,
                          NodeStart& out) {
  const std::string sdir = store::snapshot_dir(dir, p);
  auto names = env.list_dir(sdir);
  if (!names.is_ok()) return;  // none yet
  std::vector<std::pair<uint64_t, std::string>> found;
  for (const std::string& n : *names) {
    uint64_t index = 0, term = 0;
    if (store::parse_snapshot_file_name(n, index, term)) found.emplace_back(index, n);
  }
  std::sort(found.rbegin(), found.rend());
  for (const auto& [index, name] : found) {
    const std::string path = join_path(sdir, name);
    auto meta = store::load_snapshot(env, path, store);
    if (!meta.is_ok()) {
      out.notes.push_back("partition " + std::to_string(p) + ": snapshot " + path + " skipped: " + meta.status().message());
      store.flush();
      continue;
    }
    ps.snapshot_index = meta->index;
    ps.snapshot_term = meta->term;
    ps.snapshot_path = path;
    out.snapshots_loaded++;
    out.keys_loaded += store.size();
    return;
  }
}

}  // namespace

std::string wal_dir(const std::string& dir, uint32_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "wal/shard-%03u", shard);
  return join_path(dir, name);
}

Result<std::string> check_node_file(Env& env, const std::string& dir, uint32_t partitions) {
  TALLY_RETURN_IF_ERROR(env.create_dirs(dir));
  const std::string path = join_path(dir, "NODE");
  auto text_of = [partitions](const std::string& id) {
    return "format = " + std::to_string(kNodeFormat) + "\npartitions = " + std::to_string(partitions) +
           "\nid = " + id + "\n";
  };
  if (!env.exists(path)) {
    const std::string id = cluster::make_node_id(env.random_seed());
    TALLY_RETURN_IF_ERROR(env.write_file_atomic(path, text_of(id)));
    return id;
  }
  auto text = env.read_file(path);
  if (!text.is_ok()) return text.status();
  uint32_t format = 0, recorded = 0;
  if (std::sscanf(text->c_str(), "format = %u\npartitions = %u", &format, &recorded) != 2) {
    return Status::corruption(path + " is not a Tally node file");
  }
  if (format != kNodeFormat) {
    return Status::invalid(path + " has format " + std::to_string(format) + "; this tallyd reads format " +
                           std::to_string(kNodeFormat));
  }
  if (recorded != partitions) {
    return Status::invalid("the data directory " + dir + " was created with " + std::to_string(recorded) +
                           " partitions; start with --partitions " + std::to_string(recorded) + " (not " +
                           std::to_string(partitions) + ")");
  }
  // The node's id (its name in a cluster) is kept from its first start; files written before ids
  // existed get one now.
  const size_t at = text->find("\nid = ");
  if (at == std::string::npos) {
    const std::string id = cluster::make_node_id(env.random_seed());
    TALLY_RETURN_IF_ERROR(env.write_file_atomic(path, text_of(id)));
    return id;
  }
  const size_t from = at + 6;
  const size_t to = text->find('\n', from);
  std::string id = text->substr(from, to == std::string::npos ? std::string::npos : to - from);
  if (!cluster::valid_node_id(id)) return Status::corruption(path + ": node id '" + id + "' is not 40 hex characters");
  return id;
}

Status recover_node(Env& env, const std::string& dir, std::vector<store::Store*> stores, NodeStart& out) {
  const uint32_t partitions = static_cast<uint32_t>(stores.size());
  out.partitions.assign(partitions, PartitionStart{});
  for (uint32_t p = 0; p < partitions; ++p) load_newest_snapshot(env, dir, p, *stores[p], out.partitions[p], out);

  auto shards = env.list_dir(join_path(dir, "wal"));
  if (!shards.is_ok()) return Status::ok();  // no log yet
  for (const std::string& name : *shards) {
    uint32_t shard = 0;
    if (name.rfind("shard-", 0) != 0) continue;
    auto [ptr, ec] = std::from_chars(name.data() + 6, name.data() + name.size(), shard);
    if (ec != std::errc()) continue;
    const std::string ldir = join_path(join_path(dir, "wal"), name);
    uint64_t records = 0;
    Status bad = Status::ok();
    auto result = wal::recover(env, ldir, wal::RecoverMode::kRepairTail,
                               [&](const wal::RecordHeader& h, std::string_view payload) {
      if (h.group >= partitions) {
        bad = Status::corruption(ldir + ": a record names partition " + std::to_string(h.group) + " of " +
                                 std::to_string(partitions));
        return;
      }
      PartitionStart& ps = out.partitions[h.group];
      ++records;
      if (ps.log_dir != shard) {
        if (ps.log_dir != UINT32_MAX && ps.unavailable.empty()) {
          // A partition's records are written by one shard's log per run; two logs holding them means
          // an interrupted change of the shard count, whose order cannot be told apart safely.
          ps.unavailable = "records in two shard logs (" + std::to_string(ps.log_dir) + " and " +
                           std::to_string(shard) + "): restart with the earlier --threads, SAVE, then change it";
        }
        ps.log_dir = shard;
      }
      group::add_record(ps, h, payload, ldir);
    });
    if (!result.is_ok()) return result.status();
    TALLY_RETURN_IF_ERROR(bad);
    out.log_dirs[shard] = records;
    out.logs[shard] = *result;
    out.records += result->records;
    out.bytes += result->bytes;
    out.next_seq = std::max(out.next_seq, result->next_seq);
    if (result->torn_tail) {
      out.notes.push_back("torn tail truncated in " + result->torn_tail->file + " at offset " +
                          std::to_string(result->torn_tail->offset));
    }
    for (const auto& [group, rec] : result->unavailable) {
      if (group >= partitions) continue;
      out.partitions[group].unavailable = "corrupt log record (" + rec.what +
                                          (rec.group_known ? "" : ", its partition unknown") + ") in " + rec.file +
                                          " at offset " + std::to_string(rec.offset);
    }
  }
  for (PartitionStart& ps : out.partitions) group::finish(ps);
  return Status::ok();
}

}  // namespace tally::server
