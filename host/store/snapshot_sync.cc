// Snapshot file names, and writing or loading a whole snapshot at once through an Env (tests, tools,
// start-up). tallyd's shell writes asynchronously with the same SnapshotWriter and ImageWriter.
#include <cinttypes>
#include <cstdio>

#include "host/store/entry_record.h"
#include "host/store/image.h"
#include "host/store/snapshot_file.h"

namespace tally::store {
namespace {

constexpr size_t kIndexDigits = 20;
constexpr std::string_view kSnapSuffix = ".snap";

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

bool parse_digits(std::string_view s, uint64_t& v) {
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  return true;
}

// Every chunk into the store; the caller empties the store on error.
Status load_chunks(SnapshotReader& r, const std::string& path, Store& store) {
  for (;;) {
    std::string_view body;
    auto more = r.next(body);
    if (!more.is_ok()) return more.status();
    if (!*more) return Status::ok();
    if (Status st = load_entries(body, store); !st.is_ok()) {
      return Status(st.code(), "snapshot " + path + ": chunk at offset " + std::to_string(r.chunk_offset()) +
                                   ": " + st.message());
    }
  }
}

}  // namespace

std::string snapshot_dir(std::string_view dir, uint32_t partition) {
  char name[16];
  std::snprintf(name, sizeof name, "p-%05" PRIu32, partition);
  return join_path(join_path(dir, "snap"), name);
}

std::string snapshot_file_name(uint64_t index, uint64_t term) {
  char name[64];
  std::snprintf(name, sizeof name, "%020" PRIu64 "-%020" PRIu64 ".snap", index, term);
  return name;
}

bool parse_snapshot_file_name(std::string_view name, uint64_t& index, uint64_t& term) {
  if (name.size() != 2 * kIndexDigits + 1 + kSnapSuffix.size() || name[kIndexDigits] != '-' ||
      name.substr(2 * kIndexDigits + 1) != kSnapSuffix) {
    return false;
  }
  return parse_digits(name.substr(0, kIndexDigits), index) &&
         parse_digits(name.substr(kIndexDigits + 1, kIndexDigits), term);
}

Status write_snapshot_sync(Env& env, const std::string& path, SnapshotMeta meta, Store& store,
                           const ChecksumFn& checksum) {
  if (store.has_image()) return Status::unavailable("snapshot: an image of this store is being taken");
  const std::string dir = parent_dir(path);
  const std::string tmp = path + ".tmp";
  TALLY_RETURN_IF_ERROR(env.create_dirs(dir));
  Status st;
  {
    auto file = env.open_file(tmp, OpenMode::kCreate);
    if (!file.is_ok()) return file.status();
    File& f = **file;
    st = f.truncate(0);
    ImageWriter image(store);
    meta.cas_counter = image.cas_counter();
    SnapshotWriter w(std::move(meta), checksum);
    std::string buf;
    w.header(buf);
    uint64_t offset = 0;
    for (bool done = false; st.is_ok() && !done;) {
      const size_t at = SnapshotWriter::open_chunk(buf);
      done = image.step(buf, kSyncSliceBytes);
      st = image.status();
      if (st.is_ok()) st = w.seal_chunk(buf, at);
      if (done && st.is_ok()) w.footer(image.entries(), buf);
      if (st.is_ok() && (done || buf.size() >= kSyncSliceBytes)) {
        st = f.write_at(offset, buf);
        offset += buf.size();
        buf.clear();
      }
    }
    if (st.is_ok()) st = f.sync();
  }
  if (st.is_ok()) st = env.rename_file(tmp, path);
  if (!st.is_ok()) {
    (void)env.remove_file(tmp);  // best effort: the shell also removes *.tmp at start-up
    return st;
  }
  return env.sync_dir(dir);
}

Result<SnapshotMeta> load_snapshot(Env& env, const std::string& path, Store& store) {
  if (store.size() != 0 || store.has_image()) return Status::invalid("load_snapshot: the store is not empty");
  auto file = env.open_file(path, OpenMode::kRead);
  if (!file.is_ok()) return file.status();
  SnapshotReader r(**file, path);
  TALLY_RETURN_IF_ERROR(r.open());
  store.reserve(r.entries_claimed());
  Status st = load_chunks(r, path, store);
  if (st.is_ok() && store.size() != r.counts().entries) {
    st = Status::corruption("snapshot " + path + ": " + std::to_string(store.size()) + " keys loaded, " +
                            std::to_string(r.counts().entries) + " counted");
  }
  if (st.is_ok() && store.cas_counter() > r.meta().cas_counter) {
    st = Status::corruption("snapshot " + path + ": an entry's CAS is above the header's CAS counter");
  }
  if (!st.is_ok()) {
    store.flush();  // all or nothing
    return st;
  }
  store.set_cas_counter(r.meta().cas_counter);
  return r.meta();
}

}  // namespace tally::store
