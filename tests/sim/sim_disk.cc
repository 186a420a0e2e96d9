// NodeDisk: the node's write-ahead log over MemEnv and FaultEnv, snapshot installs recorded in the
// log, crash, damage and recovery.
#include "tests/sim/sim_disk.h"

#include <algorithm>
#include <cstring>

#include "host/wal/recovery.h"
#include "host/wal/seal.h"
#include "kernels/cpu/reference.h"

namespace tally::sim {

namespace {

constexpr const char* kWalDir = "/wal";
// The log record of a snapshot installed from a leader: an entry at the snapshot's index and term.
// By the replay rule it drops whatever the group's log held after that index (entries of the log the
// snapshot replaced); it is never served, as the snapshot covers its index. Its presence after a crash
// says the install reached the disk.
constexpr std::string_view kInstallMarker = "tally-sim: snapshot installed";

wal::ChecksumFn cpu_checksum() {
  return [](kernels::ChecksumBatch& b) { return kernels::checksum_cpu_checked(b); };
}

}  // namespace

// ---- SimLogIo ----

void SimLogIo::write(File& file, uint64_t offset, std::string_view bytes, bool sync, wal::Done done) {
  if (dead_) return;
  Status st = file.write_at(offset, bytes);
  if (st.is_ok() && at_ == CrashPoint::kBeforeSync) {
    dead_ = true;
    return;
  }
  if (st.is_ok() && sync && !skip_fsync) st = file.sync();
  if (st.is_ok() && at_ == CrashPoint::kAfterSync) {
    dead_ = true;
    return;
  }
  done(std::move(st));
}

void SimLogIo::sync(File& file, wal::Done done) {
  if (dead_) return;
  done(skip_fsync ? Status::ok() : file.sync());
}

void SimLogIo::run_blocking(std::function<Status()> work, wal::Done done) {
  if (dead_) return;
  done(work());
}

// ---- InstallLog ----

// The node's GroupLog: the WAL group log, plus what a snapshot install needs. The snapshot is written
// first (durable at once, as `installing`), then a marker record at its index ahead of the Ready's
// records; the install counts once that record is durable, and after a crash only if it survived.
class NodeDisk::InstallLog final : public group::GroupLog {
 public:
  InstallLog(NodeDisk& disk, group::WalGroupLog& wal) : disk_(disk), wal_(wal) {}

  void persist(uint32_t group, const raft::Ready& rd, std::function<void(Status)> done) override {
    if (!rd.snapshot) {
      wal_.persist(group, rd, std::move(done));
      return;
    }
    const raft::Snapshot& snap = *rd.snapshot;
    disk_.files_[group].installing = snap;
    raft::Ready records;
    records.entries.reserve(rd.entries.size() + 1);
    records.entries.push_back(
        raft::Entry{snap.metadata.term, snap.metadata.index, raft::EntryType::kNoop, std::string(kInstallMarker)});
    records.entries.insert(records.entries.end(), rd.entries.begin(), rd.entries.end());
    records.hard_state = rd.hard_state;
    const raft::Index index = snap.metadata.index;
    wal_.persist(group, records, [this, group, index, done = std::move(done)](Status st) {
      if (st.is_ok()) disk_.completed_install(group, index);
      done(std::move(st));
    });
  }

 private:
  NodeDisk& disk_;
  group::WalGroupLog& wal_;
};

// ---- NodeDisk ----

NodeDisk::NodeDisk(uint64_t seed) : mem_(seed), fault_(mem_, seed ^ 0x5eed) {
  // A failed fdatasync may drop the file's dirty pages (docs/wal-format.md, "Disk faults").
  fault_.on_failed_sync = [this](const std::string& path) { mem_.drop_unsynced(path); };
}

NodeDisk::~NodeDisk() = default;

void NodeDisk::open(const std::set<uint32_t>& hosted) {
  TALLY_ASSERT(log_ == nullptr);
  io_.reset();
  wal::LogOptions options;
  options.segment_bytes = kSegmentBytes;
  options.sync_each_batch = true;
  const uint64_t next_seq = recovered_ ? recovered_->next_seq : 1;
  auto log = wal::Log::open(fault_, io_, kWalDir, 0, next_seq, options, cpu_checksum());
  TALLY_ASSERT_MSG(log.is_ok(), log.status().to_string().c_str());
  log_ = std::move(log).value();
  wal_ = std::make_unique<group::WalGroupLog>(*log_);
  wal_->set_failure_handler([this](const Status&) { failed_ = true; });
  install_ = std::make_unique<InstallLog>(*this, *wal_);
  failed_ = false;
  retrying_ = false;
  if (recovered_) {
    log_->adopt(*recovered_);
    for (const wal::SegmentSummary& s : recovered_->segment_summaries) {
      for (const auto& [group, index] : s.max_index) {
        if (!hosted.count(group)) releases_.emplace_back(group, UINT64_MAX);
      }
    }
    recovered_.reset();
  }
  for (const auto& [group, f] : files_) {
    if (f.snapshot) releases_.emplace_back(group, f.snapshot->metadata.index);
  }
}

group::GroupLog& NodeDisk::group_log() {
  TALLY_ASSERT(install_ != nullptr);
  return *install_;
}

void NodeDisk::flush() {
  TALLY_ASSERT(log_ != nullptr);
  for (uint32_t round = 0; !io_.dead() && !failed_; ++round) {
    TALLY_ASSERT_MSG(round < kFlushRoundsMax, "sim: the groups keep appending");
    if (log_->has_pending()) {
      wal_->flush();  // completes at once: the groups go on, and may append their next Readys
      continue;
    }
    if (releases_.empty()) return;
    // Once everything is written: released segments go, and a hard state they hold is appended again.
    std::vector<std::pair<uint32_t, uint64_t>> releases;
    releases.swap(releases_);
    for (const auto& [group, index] : releases) log_->release(group, index);
  }
}

void NodeDisk::retry() {
  if (!failed_ || retrying_ || io_.dead()) return;
  retrying_ = true;
  wal_->retry([this](Status st) {
    retrying_ = false;
    if (st.is_ok()) {
      failed_ = false;
      ++stats_.retries;
    }
  });
}

void NodeDisk::release(uint32_t group, uint64_t index) { releases_.emplace_back(group, index); }

void NodeDisk::save_snapshot(uint32_t group, raft::Snapshot snapshot) {
  GroupFiles& f = files_[group];
  TALLY_ASSERT(!f.snapshot || f.snapshot->metadata.index <= snapshot.metadata.index);
  f.snapshot = std::move(snapshot);
}

void NodeDisk::save_conf(uint32_t group, const raft::ConfState& conf) { files_[group].conf = conf; }

void NodeDisk::completed_install(uint32_t group, raft::Index index) {
  GroupFiles& f = files_[group];
  if (!f.installing || f.installing->metadata.index != index) return;
  f.snapshot = std::move(*f.installing);
  f.installing.reset();
  f.conf = f.snapshot->metadata.conf;
}

void NodeDisk::crash(Rng& rng) {
  if (log_ != nullptr) {
    const wal::LogStats& s = log_->stats();
    stats_.failures += s.failures;
    stats_.segments_deleted += s.segments_deleted;
    stats_.batches += s.batches;
  }
  // The groups are gone already; what they handed to the log dies with it, never called back.
  install_.reset();
  wal_.reset();
  log_.reset();
  releases_.clear();
  fault_.clear_faults();
  mem_.crash(rng);
  fault_.reset_space_accounting();
}

DiskStats NodeDisk::stats() const {
  DiskStats s = stats_;
  if (log_ != nullptr) {
    s.failures += log_->stats().failures;
    s.segments_deleted += log_->stats().segments_deleted;
    s.batches += log_->stats().batches;
  }
  return s;
}

std::string NodeDisk::damage(Rng& rng) {
  TALLY_ASSERT(log_ == nullptr);
  // Every valid record, in log order, read as recovery would (up to a torn tail).
  struct Rec {
    std::string path;
    uint64_t offset = 0;
    uint64_t bytes = 0;  // header and payload, without padding (a flip there changes nothing)
    size_t segment = 0;
  };
  std::vector<Rec> recs;
  auto names = mem_.list_dir(kWalDir);
  if (!names.is_ok()) return {};
  size_t segment = 0;
  for (const std::string& name : *names) {
    if (name.size() != 24 || name.substr(20) != ".wal") continue;
    const uint64_t seq = std::stoull(name.substr(0, 20));
    const std::string path = join_path(kWalDir, name);
    auto data = mem_.read_file(path);
    if (!data.is_ok()) continue;
    const std::string& d = *data;
    ++segment;
    for (uint64_t off = wal::kSegmentHeaderBytes; off + wal::kRecordHeaderBytes <= d.size();) {
      const char* p = d.data() + off;
      if (std::all_of(p, p + wal::kRecordHeaderBytes, [](char c) { return c == 0; })) break;
      const wal::RecordFrame f = wal::decode_record_frame(p);
      if (wal::record_header_problem(f, p, seq, d.size() - off) != nullptr) break;
      if (wal::crc32c_any(p + wal::kRecordHeaderBytes, f.payload_bytes) != f.payload_crc) break;
      recs.push_back(Rec{path, off, wal::kRecordHeaderBytes + f.payload_bytes, segment});
      off += wal::record_bytes(f.payload_bytes);
    }
  }
  if (recs.size() < 3) return {};
  // Never the last record: a valid one must follow, or recovery rightly takes it for a torn tail.
  const size_t lo = recs.size() - 1 > kDamageWindow ? recs.size() - 1 - kDamageWindow : 0;
  const size_t i = lo + rng.uniform(recs.size() - 1 - lo);
  const Rec& r = recs[i];
  // A zeroed header reads as the end of its segment's records unless a valid record follows in the
  // same segment (docs/wal-format.md): only then is it a lost sector recovery can see.
  if (recs[i + 1].segment == r.segment && rng.chance(1, 4)) {
    Status st = fault_.zero_range(r.path, r.offset, wal::kRecordHeaderBytes);
    TALLY_ASSERT(st.is_ok());
    return "zeroed the header of the record at " + r.path + ":" + std::to_string(r.offset);
  }
  const uint64_t at = r.offset + rng.uniform(r.bytes);
  const int bit = static_cast<int>(rng.uniform(8));
  Status st = fault_.flip_bit(r.path, at, bit);
  TALLY_ASSERT(st.is_ok());
  return "flipped bit " + std::to_string(bit) + " at " + r.path + ":" + std::to_string(at) + " (record at " +
         std::to_string(r.offset) + ")";
}

NodeRecovery NodeDisk::recover(const std::set<uint32_t>& hosted, bool unknown_group_keeps_all) {
  TALLY_ASSERT(log_ == nullptr);
  NodeRecovery out;
  // Each group from its durable snapshot; a group with an install in flight also from the installed
  // snapshot, which counts if its marker record survived.
  std::map<uint32_t, group::GroupStart> base, installed;
  std::set<uint32_t> marker_found;
  for (uint32_t g : hosted) {
    GroupFiles& f = files_[g];
    group::GroupStart& s = base[g];
    if (f.snapshot) {
      s.snapshot_index = f.snapshot->metadata.index;
      s.snapshot_term = f.snapshot->metadata.term;
    }
    if (f.installing) {
      group::GroupStart& t = installed[g];
      t.snapshot_index = f.installing->metadata.index;
      t.snapshot_term = f.installing->metadata.term;
    }
  }
  auto result = wal::recover(mem_, kWalDir, wal::RecoverMode::kRepairTail,
                             [&](const wal::RecordHeader& h, std::string_view payload) {
    auto b = base.find(h.group);
    if (b == base.end()) return;  // a group this node no longer hosts
    group::add_record(b->second, h, payload, kWalDir);
    auto t = installed.find(h.group);
    if (t == installed.end()) return;
    group::add_record(t->second, h, payload, kWalDir);
    if (h.type == wal::RecordType::kEntry && h.index == t->second.snapshot_index &&
        h.term == t->second.snapshot_term && payload == kInstallMarker) {
      marker_found.insert(h.group);
    }
  });
  TALLY_ASSERT_MSG(result.is_ok(), result.status().to_string().c_str());
  out.torn_tail = result->torn_tail.has_value();
  out.corruptions = result->corruptions.size();
  for (uint32_t g : hosted) {
    GroupFiles& f = files_[g];
    RecoveredGroup& rg = out.groups[g];
    if (f.installing && marker_found.count(g)) {
      rg.start = std::move(installed[g]);
      completed_install(g, f.installing->metadata.index);
    } else {
      rg.start = std::move(base[g]);
      f.installing.reset();
    }
    const wal::BadRecord* bad = nullptr;
    if (auto it = result->unavailable.find(g); it != result->unavailable.end()) bad = &it->second;
    // A bad header hides its record's group, which may have no other record in the log: the damaged
    // record may have been that group's last (its newest vote, say). Every group the log serves stays down.
    if (bad == nullptr && unknown_group_keeps_all && result->unknown_group) bad = &*result->unknown_group;
    if (bad != nullptr) {
      rg.start.unavailable = "corrupt log record (" + bad->what + ") in " + bad->file + " at offset " +
                             std::to_string(bad->offset);
    }
    group::finish(rg.start);
    if (f.snapshot) {
      TALLY_ASSERT(f.snapshot->metadata.index == rg.start.snapshot_index);
      rg.snapshot = f.snapshot;
    }
    rg.conf = f.conf;
  }
  recovered_ = std::move(result).value();
  return out;
}

}  // namespace tally::sim
