// Env: everything nondeterministic a node touches — clocks, files, randomness — behind one interface,
// so tests and the simulator substitute their own and inject faults (a disk that fails, a clock that jumps).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/clock.h"
#include "host/common/status.h"

namespace tally {

// An open file. Not thread-safe: one owner at a time. Errors are values; ENOSPC is kResourceExhausted
// (the disk is full, reads still work), everything else kIoError.
class File {
 public:
  virtual ~File() = default;
  // Reads up to n bytes at offset; fewer only at the end of the file.
  virtual Result<size_t> read_at(uint64_t offset, char* buf, size_t n) = 0;
  // Writes all of data at offset, or fails. A failed write may have written a prefix.
  virtual Status write_at(uint64_t offset, std::string_view data) = 0;
  // fdatasync: what was written is durable once this returns ok. After a failure nothing written
  // since the last successful sync may be assumed durable, not even after a later sync succeeds.
  virtual Status sync() = 0;
  virtual Status truncate(uint64_t size) = 0;
  // Reserves size bytes, which read as zeros, so that writes within them need no metadata update
  // (the POSIX Env writes the zeros: see env_posix.cc).
  virtual Status allocate(uint64_t size) = 0;
  virtual Result<uint64_t> size() = 0;
  // The kernel descriptor for asynchronous I/O (io_uring), or -1 when this file is not a real one.
  virtual int fd() const { return -1; }
};

enum class OpenMode : uint8_t {
  kRead,          // must exist
  kReadWrite,     // must exist
  kCreate,        // created when absent, kept when present
  kCreateNew,     // created; kAlreadyExists when present
};

class Env {
 public:
  virtual ~Env() = default;

  virtual const Clock& clock() const = 0;
  uint64_t wall_ms() const { return clock().wall_ms(); }
  uint64_t monotonic_ns() const { return clock().monotonic_ns(); }
  // A seed for randomness that must differ between runs (production) or replay (tests).
  virtual uint64_t random_seed() = 0;

  virtual Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) = 0;
  // Creates the directory and any missing parents.
  virtual Status create_dirs(const std::string& path) = 0;
  // Names (not paths) of the entries in a directory, sorted.
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual Status remove_file(const std::string& path) = 0;
  // Atomic replace of `to` (POSIX rename).
  virtual Status rename_file(const std::string& from, const std::string& to) = 0;
  // Makes created, renamed and removed names in the directory durable.
  virtual Status sync_dir(const std::string& path) = 0;

  // Reads a whole (small) file.
  Result<std::string> read_file(const std::string& path);
  // Writes a small file durably: a temporary next to it, sync, rename, sync the directory.
  Status write_file_atomic(const std::string& path, std::string_view data);

  // The process's real environment: the system clocks, the POSIX file system, /dev/urandom.
  static Env& posix();
};

std::string join_path(std::string_view dir, std::string_view name);

}  // namespace tally
