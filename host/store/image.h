// ImageWriter: a point-in-time image of one Store, produced in slices of entry records while the store
// keeps serving writes (copy on write of single entries, docs/store.md). No clock, no randomness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "host/common/status.h"
#include "host/store/entry_record.h"
#include "host/store/store.h"

namespace tally::store {

struct ImageStats {
  uint64_t copied_entries = 0;      // entries copied out by writes before the walk reached them
  uint64_t drained_containers = 0;  // sets/hashes begun by the walk whose rest a write copied out
  uint64_t buffered_bytes_max = 0;  // the most bytes of such copies held at once
  bool finished_early = false;      // a flush or an overfull table made it copy out the rest at once
};

// Not thread-safe: driven by the store's own thread, between commands.
class ImageWriter {
 public:
  static constexpr uint64_t kRehashBucketBytes = 16;  // budget bytes per bucket of a pending rehash
  static constexpr size_t kBufferKeepBytes = 1 << 20;  // buffer capacity kept (or compacted) beyond
  // A slice is at most its budget plus one record (each under 1.6 GiB), so it fits a 2 GiB chunk.
  static constexpr size_t kStepBudgetBytesMax = 256 << 20;

  // Begins an image of `store` as it is now. One image per store at a time; the store must outlive
  // it while it is active (until step() returns true or the writer is destroyed).
  explicit ImageWriter(Store& store);
  // An unfinished image is abandoned; the store goes on as before.
  ~ImageWriter();
  ImageWriter(const ImageWriter&) = delete;
  ImageWriter& operator=(const ImageWriter&) = delete;

  // Appends the next records to `out`, stopping at the first record boundary at or past budget_bytes
  // (a set or hash record is about kContainerPartBytes; a string is one record however long) and
  // after visiting at most budget_bytes buckets. True once the image is complete (this slice may be
  // empty); then status() says whether it can be used. budget_bytes <= kStepBudgetBytesMax.
  bool step(std::string& out, size_t budget_bytes);

  uint64_t entries() const { return entries_; }       // keys in the image so far; all once complete
  uint64_t cas_counter() const { return cas_start_; }  // the store's CAS counter when it began
  // ok, or why the image cannot be written (an element over kElementBytesMax); then step() is done.
  const Status& status() const { return status_; }
  size_t buffered_bytes() const { return buffer_.size() - read_; }  // copies waiting for a slice
  const ImageStats& stats() const { return stats_; }

 private:
  friend class Store;
  // A set or hash the walk has begun and not finished (its bucket is walked): its members from `at`
  // on are still to go, before any write to it.
  struct Pending {
    std::string key;
    const SetValue* set = nullptr;
    const HashValue* hash = nullptr;
    SetValue::Members::const_iterator set_at;
    HashValue::Fields::const_iterator hash_at;
  };
  using KeySet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

  // The store's hook, before `e` changes or is freed.
  void before_change(const Entry& e);
  // The store is about to resize its table or flush: everything still needed is copied out now.
  void finish_now();

  bool walked(std::string_view key) const;
  bool start_walk(size_t budget_bytes);
  void walk(std::string& out, size_t limit, size_t budget_bytes);
  Status walk_bucket(uint64_t bucket, std::string& out, size_t limit, bool whole);
  Status begin_container(const Entry& e, std::string& out);
  Status pending_part(Pending& p, std::string& out, bool& done);
  Status drain_pending(Pending& p, std::string& out);
  void drain_buffer(std::string& out, size_t limit);
  void note_buffered();
  void fail(Status st);
  void detach();

  Store& store_;
  const uint64_t cas_start_;  // entries with a larger CAS were written after the image began
  bool active_ = false;       // hooked into the store (the walk is not finished)
  bool walk_started_ = false;
  uint64_t mask_ = 0;    // t_[0]'s mask, fixed while the walk runs
  uint64_t cursor_ = 0;  // buckets below it have been walked
  KeySet copied_;        // keys the hook copied out before the walk reached them: it skips them
  std::vector<Pending> pending_;
  std::string buffer_;  // records copied out by the hook, for the next slices
  size_t read_ = 0;     // buffer_ bytes already handed out
  uint64_t entries_ = 0;
  Status status_;
  ImageStats stats_;
};

}  // namespace tally::store
