// How the WAL's bytes reach the disk. In tallyd the shard's reactor issues them (io_uring: a write
// linked to an fdatasync; a helper thread on the epoll fallback), so the shard never blocks on the
// disk. Tests, the simulator and the tools use InlineLogIo, which does everything at once.
#pragma once

#include <functional>
#include <string_view>

#include "host/common/env.h"
#include "host/common/status.h"

namespace tally::wal {

using Done = std::function<void(Status)>;

class LogIo {
 public:
  virtual ~LogIo() = default;
  // Writes all of `bytes` at `offset` of `file`, then, if `sync`, fdatasyncs the file. `done` runs on
  // the calling thread once both finished or one failed; `bytes` and `file` stay valid until then.
  virtual void write(File& file, uint64_t offset, std::string_view bytes, bool sync, Done done) = 0;
  // fdatasync alone.
  virtual void sync(File& file, Done done) = 0;
  // Blocking file work (preparing a segment, deleting one) off the calling thread; `done` runs on
  // the calling thread with its result.
  virtual void run_blocking(std::function<Status()> work, Done done) = 0;
};

// Runs everything at once through the File and calls `done` before returning.
class InlineLogIo final : public LogIo {
 public:
  void write(File& file, uint64_t offset, std::string_view bytes, bool sync, Done done) override {
    Status st = file.write_at(offset, bytes);
    if (st.is_ok() && sync) st = file.sync();
    done(std::move(st));
  }
  void sync(File& file, Done done) override { done(file.sync()); }
  void run_blocking(std::function<Status()> work, Done done) override { done(work()); }
};

}  // namespace tally::wal
