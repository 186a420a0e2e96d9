// FaultEnv: a decorator over any Env that injects disk faults — EIO on write or sync, ENOSPC on
// allocate or past a space limit, short writes — by operation, file-name pattern and count ("fail the
// 3rd sync of *.wal"), and damages files afterwards (bit flips, truncation, zeroed ranges).
// Deterministic: short-write lengths come from a seeded Rng. For unit tests and the simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/rng.h"

namespace tally::testing {

enum class FaultOp : uint8_t {
  kOpen,
  kWrite,
  kSync,
  kAllocate,
  kTruncate,
  kSyncDir,
  kRemove,
  kRename,
  kAnyChange,  // every call above: a disk that stops taking anything (power cut as seen from inside)
};
inline constexpr size_t kFaultOpCount = 9;

enum class FaultKind : uint8_t {
  kIoError,     // EIO
  kNoSpace,     // ENOSPC (Code::kResourceExhausted)
  kShortWrite,  // writes: a prefix goes to the file, then EIO; other calls: EIO
};

inline constexpr uint64_t kFaultForever = UINT64_MAX;
inline constexpr uint64_t kFaultRandomBytes = UINT64_MAX;

struct Fault {
  FaultOp op = FaultOp::kSync;
  FaultKind kind = FaultKind::kIoError;
  std::string pattern = "*";  // fnmatch(3) over the whole path ('*' also matches '/')
  uint64_t skip = 0;          // matching calls that succeed first: "fail the 3rd sync" is skip = 2
  uint64_t times = 1;         // matching calls that fail after those (kFaultForever)
  uint64_t short_bytes = kFaultRandomBytes;  // kShortWrite: bytes written before failing
};

class FaultEnv final : public Env {
 public:
  FaultEnv(Env& base, uint64_t seed);
  ~FaultEnv() override;

  // Faults are checked in the order added; every matching fault counts the call, the first whose
  // turn it is fires. Returns an id for fired().
  int inject(const Fault& fault);
  uint64_t fired(int id) const;
  void clear_faults();
  // Calls of an operation seen so far, on any path.
  uint64_t calls(FaultOp op) const;
  // Runs after an injected sync failure with the file's path (MemEnv::drop_unsynced models a kernel
  // dropping the dirty pages).
  std::function<void(const std::string& path)> on_failed_sync;

  // A disk of `bytes`: allocations and writes that would grow the files opened through this env past
  // it fail with ENOSPC (a write puts what fits, then fails). Removing files frees their bytes.
  void set_space_limit(uint64_t bytes);
  void clear_space_limit();
  uint64_t space_used() const;
  // Forgets file sizes learned so far (after the base env crashed); they are learned again on open.
  void reset_space_accounting();

  // Damage to a file on the base env, made durable (bypasses the faults).
  Status flip_bit(const std::string& path, uint64_t offset, int bit);
  Status truncate_file(const std::string& path, uint64_t size);
  Status zero_range(const std::string& path, uint64_t offset, uint64_t bytes);

  const Clock& clock() const override { return base_.clock(); }
  uint64_t random_seed() override { return base_.random_seed(); }
  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override;
  Status create_dirs(const std::string& path) override { return base_.create_dirs(path); }
  Result<std::vector<std::string>> list_dir(const std::string& path) override { return base_.list_dir(path); }
  bool exists(const std::string& path) override { return base_.exists(path); }
  Status remove_file(const std::string& path) override;
  Status rename_file(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& path) override;

 private:
  class FaultFile;
  struct Rule {
    Fault fault;
    uint64_t seen = 0;
    uint64_t fired = 0;
  };
  // The fault to inject for this call, if any.
  std::optional<Fault> check(FaultOp op, const std::string& path);
  Status injected(const Fault& f, FaultOp op, const std::string& path);
  // Under a space limit, when the file at `path` cannot grow to `size`: the bytes it still may grow.
  std::optional<uint64_t> room_short(const std::string& path, uint64_t size);
  void set_size(const std::string& path, uint64_t size);

  Env& base_;
  mutable std::mutex mu_;
  Rng rng_;
  std::vector<Rule> rules_;
  uint64_t calls_[kFaultOpCount] = {};
  std::optional<uint64_t> space_limit_;
  std::map<std::string, uint64_t> sizes_;
};

}  // namespace tally::testing
