// Snapshot files: write and load back; every kind of damage refused with a clear Status and nothing
// loaded; truncation at every offset reads as truncated; chunk CRCs through a ChecksumFn; load speed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/rng.h"
#include "host/store/entry_record.h"
#include "host/store/image.h"
#include "host/store/snapshot_file.h"
#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/reference.h"
#include "tests/unit/store/store_content.h"

namespace tally::store {
namespace {

using testing::content_of;
using testing::first_difference;

class TempDir {
 public:
  explicit TempDir(const char* base = "/tmp") {
    std::string t = std::string(base) + "/tally-snap-XXXXXX";
    TALLY_ASSERT(::mkdtemp(t.data()) != nullptr);
    path_ = t;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(std::string_view name) const { return join_path(path_, name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A read-only file in memory, for reading thousands of damaged variants quickly.
class MemFile final : public File {
 public:
  explicit MemFile(std::string data) : data_(std::move(data)) {}
  Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
    if (offset >= data_.size()) return size_t{0};
    n = std::min<size_t>(n, data_.size() - offset);
    std::memcpy(buf, data_.data() + offset, n);
    return n;
  }
  Status write_at(uint64_t, std::string_view) override { return Status::unimplemented("read-only"); }
  Status sync() override { return Status::ok(); }
  Status truncate(uint64_t) override { return Status::unimplemented("read-only"); }
  Status allocate(uint64_t) override { return Status::unimplemented("read-only"); }
  Result<uint64_t> size() override { return static_cast<uint64_t>(data_.size()); }

 private:
  std::string data_;
};

SnapshotMeta test_meta() {
  SnapshotMeta m;
  m.partition = 7;
  m.first_slot = 1024;
  m.last_slot = 2047;
  m.index = 123456;
  m.term = 9;
  m.membership = "voters=1,2,3";
  m.taken_at_ms = testing::kNow;
  return m;
}

void fill(Store& s, uint64_t seed, uint64_t keys) {
  Rng rng(seed);
  for (uint64_t i = 0; i < keys; ++i) testing::add_random_key(s, rng, i);
}

// A snapshot's bytes made in memory with small slices, so it has many chunks. `offsets` gets the file
// offset of each chunk frame and of the footer (last).
std::string snapshot_bytes(Store& s, SnapshotMeta meta, size_t budget, std::vector<size_t>* offsets = nullptr) {
  ImageWriter image(s);
  meta.cas_counter = image.cas_counter();
  SnapshotWriter w(meta);
  std::string buf;
  w.header(buf);
  for (bool done = false; !done;) {
    const size_t at = SnapshotWriter::open_chunk(buf);
    done = image.step(buf, budget);
    EXPECT_TRUE(w.seal_chunk(buf, at).is_ok());
    if (offsets != nullptr && buf.size() > at) offsets->push_back(at);
  }
  if (offsets != nullptr) offsets->push_back(buf.size());
  w.footer(image.entries(), buf);
  return buf;
}

Status load_bytes(const std::string& bytes, Store& into) {
  TempDir dir;
  const std::string path = dir.file("x.snap");
  TALLY_RETURN_IF_ERROR(Env::posix().write_file_atomic(path, bytes));
  auto meta = load_snapshot(Env::posix(), path, into);
  return meta.is_ok() ? Status::ok() : meta.status();
}

uint32_t u32_at(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
void set_u32(std::string& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

TEST(SnapshotFile, NamesSortByIndexAndParseBack) {
  EXPECT_EQ(snapshot_file_name(42, 7), "00000000000000000042-00000000000000000007.snap");
  EXPECT_EQ(snapshot_dir("/data", 12), "/data/snap/p-00012");
  uint64_t index = 0, term = 0;
  ASSERT_TRUE(parse_snapshot_file_name(snapshot_file_name(UINT64_MAX, 3), index, term));
  EXPECT_EQ(index, UINT64_MAX);
  EXPECT_EQ(term, 3u);
  EXPECT_LT(snapshot_file_name(9, 100), snapshot_file_name(10, 1));
  EXPECT_FALSE(parse_snapshot_file_name("00000000000000000042-00000000000000000007.snap.tmp", index, term));
  EXPECT_FALSE(parse_snapshot_file_name("99999999999999999999-00000000000000000007.snap", index, term));
}

TEST(SnapshotFile, WriteSyncThenLoadRoundTrips) {
  Store s;
  fill(s, 5, 5000);
  Rng rng(2);
  s.set_string("one-megabyte", testing::random_bytes(rng, 1 << 20), testing::kNow + 60'000, false, 77);
  const testing::Content want = content_of(s);
  TempDir dir;
  const std::string path = join_path(snapshot_dir(dir.path(), 7), snapshot_file_name(123456, 9));
  ASSERT_TRUE(write_snapshot_sync(Env::posix(), path, test_meta(), s).is_ok());
  EXPECT_FALSE(Env::posix().exists(path + ".tmp"));

  Store loaded;
  auto meta = load_snapshot(Env::posix(), path, loaded);
  ASSERT_TRUE(meta.is_ok()) << meta.status().to_string();
  SnapshotMeta expect = test_meta();
  expect.cas_counter = s.cas_counter();
  EXPECT_EQ(*meta, expect);
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
  EXPECT_EQ(loaded.cas_counter(), s.cas_counter());
  EXPECT_GT(loaded.set_string("new", "v", 0, false)->cas(), s.cas_counter());  // CAS never reused

  auto f = Env::posix().open_file(path, OpenMode::kRead);
  ASSERT_TRUE(f.is_ok());
  SnapshotCounts counts;
  uint64_t bodies = 0;
  auto read = read_snapshot(**f, [&](std::string_view) { ++bodies; return Status::ok(); }, &counts);
  ASSERT_TRUE(read.is_ok());
  EXPECT_EQ(counts.entries, s.size());
  EXPECT_EQ(counts.chunks, bodies);
  EXPECT_GT(counts.chunks, 1u);
}

TEST(SnapshotFile, EmptyStoreHasNoChunks) {
  Store s;
  const std::string bytes = snapshot_bytes(s, test_meta(), 4096);
  Store loaded;
  MemFile f(bytes);
  SnapshotCounts counts;
  ASSERT_TRUE(read_snapshot(f, [](std::string_view) { return Status::ok(); }, &counts).is_ok());
  EXPECT_EQ(counts.chunks, 0u);
  EXPECT_TRUE(load_bytes(bytes, loaded).is_ok());
}

TEST(SnapshotFile, SealingSeveralChunksAtOnceGivesTheSameBytes) {
  Store s;
  fill(s, 8, 500);
  std::string one, many;
  {
    ImageWriter image(s);
    SnapshotMeta meta = test_meta();
    meta.cas_counter = image.cas_counter();
    SnapshotWriter w(meta);
    w.header(one);
    std::string bodies;
    std::vector<size_t> starts;
    for (bool done = false; !done;) {
      starts.push_back(SnapshotWriter::open_chunk(bodies));
      done = image.step(bodies, 1000);
    }
    ASSERT_TRUE(w.seal_chunks(bodies, starts).is_ok());
    one += bodies;
    w.footer(image.entries(), one);
  }
  many = snapshot_bytes(s, test_meta(), 1000);
  EXPECT_EQ(one, many);
}

// Damage of every kind: refused with the expected code and a message, and the store stays empty.
TEST(SnapshotFile, DamagedFilesAreRefusedAndLoadNothing) {
  Store s;
  fill(s, 3, 800);
  std::vector<size_t> at;  // chunk frames, then the footer
  const std::string good = snapshot_bytes(s, test_meta(), 2048, &at);
  ASSERT_GE(at.size(), 5u);
  const size_t footer = at.back();
  auto chunk = [&](size_t i) { return good.substr(at[i], at[i + 1] - at[i]); };
  {
    Store loaded;
    ASSERT_TRUE(load_bytes(good, loaded).is_ok());
    EXPECT_EQ(loaded.size(), s.size());
  }

  struct Case {
    const char* name;
    std::string bytes;
    Code code;
    const char* message;
  };
  std::vector<Case> cases;
  auto flip = [&](size_t offset) {
    std::string b = good;
    b[offset] ^= 0x40;
    return b;
  };
  cases.push_back({"magic", flip(1), Code::kCorruption, "magic"});
  cases.push_back({"header field", flip(26), Code::kCorruption, "header CRC"});
  cases.push_back({"membership byte", flip(kSnapshotHeaderFixedBytes + 2), Code::kCorruption, "header CRC"});
  std::string huge_membership = good;
  set_u32(huge_membership, kSnapshotHeaderFixedBytes - 4, 0x7fffffff);
  cases.push_back({"membership length", huge_membership, Code::kCorruption, "membership"});
  std::string version = good;
  set_u32(version, 8, 2);
  const size_t header_bytes = at[0];
  set_u32(version, header_bytes - 4,
          kernels::crc32c(reinterpret_cast<const uint8_t*>(version.data()), header_bytes - 4));
  cases.push_back({"newer version", version, Code::kUnimplemented, "format version 2"});
  cases.push_back({"chunk body", flip(at[2] + kChunkFrameBytes + 5), Code::kCorruption, "chunk CRC"});
  cases.push_back({"chunk CRC", flip(at[3] + 5), Code::kCorruption, "chunk CRC"});
  cases.push_back({"footer count", flip(footer + 17), Code::kCorruption, "footer"});
  cases.push_back({"footer CRC", flip(footer + 33), Code::kCorruption, "footer CRC"});
  cases.push_back({"footer magic", flip(footer + 9), Code::kCorruption, "damaged footer"});
  cases.push_back({"bytes after the footer", good + "x", Code::kCorruption, "damaged footer"});
  cases.push_back({"chunks swapped",
                   good.substr(0, at[1]) + chunk(2) + chunk(1) + good.substr(at[3]),
                   Code::kCorruption, "footer CRC"});
  cases.push_back({"chunk missing", good.substr(0, at[1]) + good.substr(at[2]), Code::kCorruption, "footer CRC"});
  // Its keys repeat, which the loader finds before the footer would.
  cases.push_back({"chunk repeated", good.substr(0, at[2]) + chunk(1) + good.substr(at[2]), Code::kCorruption,
                   "repeated key"});
  SnapshotMeta other = test_meta();
  other.index += 1;
  const std::string other_bytes = snapshot_bytes(s, other, 2048);
  cases.push_back({"header of another snapshot", other_bytes.substr(0, at[0]) + good.substr(at[0]),
                   Code::kCorruption, "footer CRC"});
  for (uint32_t len : {0u, 0x7fffffffu, 0x80000001u, 0xfffffff0u}) {
    std::string b = good;
    set_u32(b, at[1], len);
    cases.push_back({"absurd chunk length", b, Code::kCorruption, "chunk"});
  }
  // Valid CRCs around a bad record: the loader refuses it.
  {
    SnapshotWriter w(test_meta());
    std::string b;
    w.header(b);
    std::string rec;
    ASSERT_TRUE(encode_entry(*s.lookup("k1", testing::kNow, Access::kPeek), rec).is_ok());
    const size_t c = SnapshotWriter::open_chunk(b);
    b += rec + rec;
    ASSERT_TRUE(w.seal_chunk(b, c).is_ok());
    w.footer(2, b);
    cases.push_back({"repeated key", b, Code::kCorruption, "repeated key"});
  }

  for (const Case& c : cases) {
    Store loaded;
    Status st = load_bytes(c.bytes, loaded);
    EXPECT_EQ(st.code(), c.code) << c.name << ": " << st.to_string();
    EXPECT_NE(st.message().find(c.message), std::string::npos) << c.name << ": " << st.message();
    EXPECT_EQ(loaded.size(), 0u) << c.name;
    EXPECT_EQ(loaded.used_memory_bytes(), Store().used_memory_bytes()) << c.name;
  }
}

// A file cut anywhere reads as truncated, and no chunk of it is handed on.
TEST(SnapshotFile, TruncationAnywhereIsTruncatedAndHandsNothingOn) {
  Store s;
  fill(s, 4, 300);
  const std::string good = snapshot_bytes(s, test_meta(), 1024);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    MemFile f(good.substr(0, cut));
    uint64_t handed = 0;
    auto r = read_snapshot(f, [&](std::string_view) { ++handed; return Status::ok(); });
    ASSERT_FALSE(r.is_ok()) << "cut at " << cut;
    ASSERT_EQ(r.status().code(), Code::kOutOfRange) << "cut at " << cut << ": " << r.status().to_string();
    ASSERT_EQ(handed, 0u) << "cut at " << cut;
  }
}

// Chunk CRCs go through the given ChecksumFn in ranges it accepts; a body over 16 MiB is checked in
// pieces whose CRCs combine to the CRC32C of the whole body (checked with the byte-table oracle).
TEST(SnapshotFile, ChunkChecksumsRunThroughTheChecksumFn) {
  Store s;
  fill(s, 6, 100);
  Rng rng(9);
  s.set_string("big", testing::random_bytes(rng, 20 << 20), 0, false);
  TempDir dir;
  const std::string path = dir.file("big.snap");
  uint64_t calls = 0, items = 0;
  ChecksumFn fn = [&](kernels::ChecksumBatch& b) {
    ++calls;
    items += b.items;
    for (uint32_t i = 0; i < b.items; ++i) EXPECT_LE(b.lengths[i], kernels::kChecksumItemBytesMax);
    return kernels::checksum_cpu_checked(b);
  };
  ASSERT_TRUE(write_snapshot_sync(Env::posix(), path, test_meta(), s, fn).is_ok());
  EXPECT_GT(calls, 0u);
  EXPECT_GT(items, calls);  // the big body took more than one range

  auto bytes = Env::posix().read_file(path);
  ASSERT_TRUE(bytes.is_ok());
  const std::string& b = *bytes;
  size_t at = kSnapshotHeaderFixedBytes + test_meta().membership.size() + kSnapshotCrcBytes;
  bool checked_big = false;
  for (uint32_t len; (len = u32_at(b, at)) != kEndOfChunks; at += kChunkFrameBytes + len) {
    const auto* body = reinterpret_cast<const uint8_t*>(b.data() + at + kChunkFrameBytes);
    const uint32_t oracle = ~kernels::crc32c_math::raw_update(0xffffffffu, body, len,
                                                               kernels::crc32c_math::kTable.data());
    EXPECT_EQ(u32_at(b, at + 4), oracle);
    checked_big |= len > kernels::kChecksumItemBytesMax;
  }
  EXPECT_TRUE(checked_big);
  Store loaded;
  ASSERT_TRUE(load_snapshot(Env::posix(), path, loaded).is_ok());
  EXPECT_EQ(first_difference(content_of(s), content_of(loaded)), "");

  const std::string failed_path = dir.file("failed.snap");
  ChecksumFn broken = [](kernels::ChecksumBatch&) { return Status::unavailable("offload engine gone"); };
  Status st = write_snapshot_sync(Env::posix(), failed_path, test_meta(), s, broken);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_FALSE(Env::posix().exists(failed_path));
  EXPECT_FALSE(Env::posix().exists(failed_path + ".tmp"));
  EXPECT_FALSE(s.has_image());
}

TEST(SnapshotFile, LoadNeedsAnEmptyStore) {
  Store s;
  s.set_string("a", "1", 0, false);
  TempDir dir;
  const std::string path = dir.file("a.snap");
  ASSERT_TRUE(write_snapshot_sync(Env::posix(), path, test_meta(), s).is_ok());
  EXPECT_EQ(load_snapshot(Env::posix(), path, s).status().code(), Code::kInvalidArgument);
  Store fresh;
  EXPECT_EQ(load_snapshot(Env::posix(), dir.file("missing.snap"), fresh).status().code(), Code::kNotFound);
}

TEST(SnapshotFile, WriteWaitsForTheStoresImage) {
  Store s;
  s.set_string("a", "1", 0, false);
  TempDir dir;
  ImageWriter image(s);
  EXPECT_EQ(write_snapshot_sync(Env::posix(), dir.file("a.snap"), test_meta(), s).code(), Code::kUnavailable);
  EXPECT_FALSE(Env::posix().exists(dir.file("a.snap.tmp")));
}

// Load speed of a 1M-key snapshot (16-byte keys, 32-byte values) from tmpfs when there is one.
TEST(SnapshotFile, LoadSpeedOfOneMillionKeys) {
  constexpr uint64_t kKeys = 1'000'000;
  Store s;
  Rng rng(12);
  char key[32];
  for (uint64_t i = 0; i < kKeys; ++i) {
    std::snprintf(key, sizeof key, "key:%012llu", static_cast<unsigned long long>(i));
    s.set_string(key, testing::random_bytes(rng, 32), 0, false);
  }
  const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  TempDir dir(base);
  const std::string path = dir.file("million.snap");
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(write_snapshot_sync(Env::posix(), path, test_meta(), s).is_ok());
  const auto t1 = std::chrono::steady_clock::now();
  Store loaded;
  auto meta = load_snapshot(Env::posix(), path, loaded);
  const auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(meta.is_ok()) << meta.status().to_string();
  ASSERT_EQ(loaded.size(), kKeys);
  const double write_s = std::chrono::duration<double>(t1 - t0).count();
  const double load_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("1M keys (16 B keys, 32 B values) in %s: file %llu bytes; write %.3f s (%.0f keys/s), "
              "load %.3f s (%.0f keys/s)\n",
              base, static_cast<unsigned long long>(std::filesystem::file_size(path)), write_s, kKeys / write_s,
              load_s, kKeys / load_s);
}

}  // namespace
}  // namespace tally::store
