// An in-memory Env with crash semantics, after LevelDB's fault_injection_test: what was synced
// survives crash(), a random prefix of the rest may, the write after that prefix may be torn.
// Deterministic: a ManualClock and seeded randomness. For unit tests and the simulator.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/rng.h"

namespace tally::testing {

// The model:
// - File data: every write, truncate and allocate since the file's last sync() is pending. A crash
//   keeps the synced contents, then a random prefix of the pending operations, then a random
//   prefix (in bytes) of the next one if it is a write; the rest is lost.
// - Names: creating, renaming and removing a file are pending in the directory until sync_dir() of
//   that directory. A crash keeps, per directory, a random prefix of its pending name operations
//   (a journalling file system commits them in order). A rename inside one directory is one
//   operation (atomic); across directories it is an unlink in one and a link in the other, which a
//   crash may keep apart. A file no name reaches after the crash is gone.
// - Directories: create_dirs() is durable at once (tallyd makes its directories at start-up).
// - File handles opened before a crash fail every call after it (the process died).
class MemEnv final : public Env {
 public:
  explicit MemEnv(uint64_t seed = 1);
  ~MemEnv() override;

  const Clock& clock() const override { return clock_; }
  ManualClock& manual_clock() { return clock_; }
  uint64_t random_seed() override;

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status create_dirs(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  bool exists(const std::string& path) override;
  Status remove_file(const std::string& path) override;
  Status rename_file(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& path) override;

  // Power loss, as described above; `rng` chooses what of the unsynced state survives.
  void crash(Rng& rng);
  // A kernel that dropped a file's dirty pages after a failed writeback: its contents revert to what
  // was last synced (wired to FaultEnv::on_failed_sync).
  void drop_unsynced(const std::string& path);
  // Pending (unsynced) operations on a file's data, and on a directory's names.
  size_t unsynced_writes(const std::string& path);
  size_t unsynced_names(const std::string& dir);
  uint64_t crashes() const { return generation_; }

 private:
  struct Inode;
  class MemFile;
  struct NameOp;
  struct Dir;
  static std::pair<std::string, std::string> split(const std::string& path);
  std::shared_ptr<Inode> find(const std::string& path);

  mutable std::mutex mu_;
  ManualClock clock_;
  Rng seeds_;
  uint64_t generation_ = 0;
  std::map<std::string, std::unique_ptr<Dir>> dirs_;
};

}  // namespace tally::testing
