// Helpers of the WAL tests: counting wrappers around LogIo and the checksum function, a record
// stream like a shard's, and reading a log back with the replay rule applied.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "host/common/log.h"

#include "host/common/rng.h"
#include "host/wal/log.h"
#include "host/wal/log_io.h"
#include "host/wal/recovery.h"
#include "host/wal/replay.h"
#include "kernels/cpu/reference.h"

namespace tally::wal::test {

inline constexpr uint64_t kSmallSegmentBytes = kSegmentBytesMin;  // 64 KiB: rolls come quickly

// The log's warnings are expected here by the hundred; TALLY_LOG_LEVEL=info shows them.
inline const bool kLogLevelSet = [] {
  const char* level = std::getenv("TALLY_LOG_LEVEL");
  return log::set_level(level != nullptr ? level : "off");
}();

// Seeds a randomized test runs: its default, or TALLY_WAL_SEEDS for a longer soak.
inline uint64_t seed_count(uint64_t default_count) {
  const char* n = std::getenv("TALLY_WAL_SEEDS");
  return n != nullptr ? std::strtoull(n, nullptr, 10) : default_count;
}

struct ChecksumCounts {
  uint64_t calls = 0;
  uint64_t items = 0;
};

// The CPU reference, counted.
inline ChecksumFn cpu_checksum(ChecksumCounts* counts = nullptr) {
  return [counts](kernels::ChecksumBatch& b) {
    if (counts) {
      ++counts->calls;
      counts->items += b.items;
    }
    return kernels::checksum_cpu_checked(b);
  };
}

// Counts what the Log asks of its LogIo, then passes it on.
class CountingIo final : public LogIo {
 public:
  explicit CountingIo(LogIo& inner) : inner_(inner) {}
  void write(File& file, uint64_t offset, std::string_view bytes, bool sync, Done done) override {
    ++writes;
    synced_writes += sync ? 1 : 0;
    last_write_bytes = bytes.size();
    inner_.write(file, offset, bytes, sync, std::move(done));
  }
  void sync(File& file, Done done) override {
    ++syncs;
    inner_.sync(file, std::move(done));
  }
  void run_blocking(std::function<Status()> work, Done done) override {
    ++blocking;
    inner_.run_blocking(std::move(work), std::move(done));
  }
  uint64_t writes = 0, synced_writes = 0, syncs = 0, blocking = 0, last_write_bytes = 0;

 private:
  LogIo& inner_;
};

struct Rec {
  RecordHeader h;
  std::string payload;
  bool operator==(const Rec&) const = default;
};

inline RecordHeader entry_header(uint32_t group, uint64_t term, uint64_t index, uint8_t entry_type = 0) {
  RecordHeader h;
  h.type = RecordType::kEntry;
  h.entry_type = entry_type;
  h.group = group;
  h.term = term;
  h.index = index;
  return h;
}

inline RecordHeader hard_state_header(uint32_t group, uint64_t term, uint64_t commit) {
  RecordHeader h;
  h.type = RecordType::kHardState;
  h.group = group;
  h.term = term;
  h.index = commit;
  return h;
}

// A shard's stream: groups appending entries, now and then a new term that overwrites a short
// suffix (as a new leader's entries do), and hard states. Every record carries its serial number
// (from 1) in its first 8 payload bytes (an entry's) or as its vote (a hard state's), so a test can
// tell which append a recovered record is.
class Workload {
 public:
  Workload(uint64_t seed, uint32_t groups, size_t payload_bytes_max)
      : rng_(seed), last_(groups, 0), term_(groups, 1), payload_bytes_max_(payload_bytes_max) {}

  Rec next() {
    const uint64_t serial = ++serial_;
    const auto g = static_cast<uint32_t>(rng_.uniform(last_.size()));
    if (rng_.chance(1, 8)) {
      return Rec{hard_state_header(g, term_[g], last_[g] / 2), encode_vote(serial)};
    }
    uint64_t index = last_[g] + 1;
    if (last_[g] > 0 && rng_.chance(1, 16)) {
      ++term_[g];
      index = std::max<uint64_t>(1, last_[g] - rng_.uniform(3));
    }
    last_[g] = index;
    std::string payload = encode_vote(serial);
    payload.resize(8 + rng_.uniform(payload_bytes_max_ + 1));
    for (size_t i = 8; i < payload.size(); ++i) payload[i] = static_cast<char>(rng_.next());
    return Rec{entry_header(g, term_[g], index, static_cast<uint8_t>(rng_.uniform(3))), payload};
  }

  static uint64_t serial_of(const Rec& r) { return *decode_vote(std::string_view(r.payload).substr(0, 8)); }

 private:
  Rng rng_;
  std::vector<uint64_t> last_;
  std::vector<uint64_t> term_;
  size_t payload_bytes_max_;
  uint64_t serial_ = 0;
};

struct Recovered {
  RecoveryResult result;
  std::vector<Rec> recs;
  Replay replay;
};

inline Result<Recovered> recover_all(Env& env, const std::string& dir, RecoverMode mode = RecoverMode::kVerify) {
  Recovered out;
  auto r = recover(env, dir, mode, [&](const RecordHeader& h, std::string_view payload) {
    out.recs.push_back(Rec{h, std::string(payload)});
    EXPECT_TRUE(out.replay.add(h, payload).is_ok());
  });
  if (!r.is_ok()) return r.status();
  out.result = std::move(*r);
  return out;
}

inline Replay replay_of(const std::vector<Rec>& recs, size_t count) {
  Replay replay;
  for (size_t i = 0; i < count; ++i) EXPECT_TRUE(replay.add(recs[i].h, recs[i].payload).is_ok());
  return replay;
}

// What a crash may leave: every append up to some K >= `durable` (each written in order, a rewritten
// one possibly twice), and nothing else. Checks the serials, the contents, and the replayed state.
inline void expect_durable_prefix(const std::vector<Rec>& appended, size_t durable, const Recovered& got) {
  uint64_t k = 0;
  for (const Rec& r : got.recs) {
    const uint64_t serial = Workload::serial_of(r);
    ASSERT_GE(serial, 1u);
    ASSERT_LE(serial, appended.size());
    ASSERT_EQ(r, appended[serial - 1]) << "record " << serial << " came back different";
    // In order, except that a rewrite repeats a suffix already seen.
    ASSERT_LE(serial, k + 1) << "record " << serial << " follows record " << k;
    k = std::max(k, serial);
  }
  ASSERT_GE(k, durable) << "acknowledged records lost";
  ASSERT_TRUE(got.replay == replay_of(appended, k)) << "replayed state differs from the first " << k << " appends";
}

}  // namespace tally::wal::test
