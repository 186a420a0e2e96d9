// The image walks t_[0] bucket by bucket; writes copy an entry out first when the walk still needs it.
// The walk skips entries written since the start (larger CAS) and keys the hook copied.
#include "host/store/image.h"

#include <algorithm>
#include <cstring>

namespace tally::store {

ImageWriter::ImageWriter(Store& store) : store_(store), cas_start_(store.cas_counter_) {
  TALLY_ASSERT_MSG(store.image_ == nullptr, "one image per store at a time");
  store.image_ = this;
  active_ = true;
}

ImageWriter::~ImageWriter() {
  if (active_) detach();
}

void ImageWriter::detach() {
  TALLY_ASSERT(active_ && store_.image_ == this);
  store_.image_ = nullptr;
  active_ = false;
  pending_.clear();
  KeySet().swap(copied_);
}

void ImageWriter::fail(Status st) {
  TALLY_ASSERT(!st.is_ok());
  status_ = std::move(st);
  std::string().swap(buffer_);
  read_ = 0;
  if (active_) detach();
}

bool ImageWriter::walked(std::string_view key) const {
  return walk_started_ && (store_.hash(key) & mask_) < cursor_;
}

void ImageWriter::note_buffered() {
  stats_.buffered_bytes_max = std::max<uint64_t>(stats_.buffered_bytes_max, buffered_bytes());
}

void ImageWriter::before_change(const Entry& e) {
  TALLY_ASSERT(active_);
  if (e.cas() > cas_start_) return;  // written since the image began: not part of it
  const std::string_view key = e.key();
  if (walked(key)) {
    // Written out already, unless it is a set or hash the walk has begun: its other members go now.
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i].key != key) continue;
      if (Status st = drain_pending(pending_[i], buffer_); !st.is_ok()) return fail(std::move(st));
      pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(i));
      ++stats_.drained_containers;
      note_buffered();
      break;
    }
    return;
  }
  if (!copied_.empty() && copied_.contains(key)) return;  // copied at its first change
  if (Status st = encode_entry(e, buffer_); !st.is_ok()) return fail(std::move(st));
  copied_.emplace(key);
  ++entries_;
  ++stats_.copied_entries;
  note_buffered();
}

Status ImageWriter::pending_part(Pending& p, std::string& out, bool& done) {
  if (p.set != nullptr) {
    TALLY_RETURN_IF_ERROR(encode_set_part(p.key, nullptr, *p.set, p.set_at, out));
    done = p.set_at == p.set->members().end();
  } else {
    TALLY_RETURN_IF_ERROR(encode_hash_part(p.key, nullptr, *p.hash, p.hash_at, out));
    done = p.hash_at == p.hash->fields().end();
  }
  return Status::ok();
}

Status ImageWriter::drain_pending(Pending& p, std::string& out) {
  for (bool done = false; !done;) TALLY_RETURN_IF_ERROR(pending_part(p, out, done));
  return Status::ok();
}

// A set or hash's entry record with its first members; the rest waits in pending_ when there is more.
Status ImageWriter::begin_container(const Entry& e, std::string& out) {
  const EntryMeta m = meta_of(e);
  Pending p;
  bool done = false;
  if (e.type() == ValueType::kSet) {
    p.set = e.set_value();
    p.set_at = p.set->members().begin();
    TALLY_RETURN_IF_ERROR(encode_set_part(e.key(), &m, *p.set, p.set_at, out));
    done = p.set_at == p.set->members().end();
  } else {
    p.hash = e.hash_value();
    p.hash_at = p.hash->fields().begin();
    TALLY_RETURN_IF_ERROR(encode_hash_part(e.key(), &m, *p.hash, p.hash_at, out));
    done = p.hash_at == p.hash->fields().end();
  }
  if (!done) {
    p.key.assign(e.key());
    pending_.push_back(std::move(p));
  }
  return Status::ok();
}

// `whole`: sets and hashes in full (finish_now). Once `out` reaches `limit`, the rest of the chain goes
// to the buffer, so a slice passes its budget by one record at most, however long the chain.
Status ImageWriter::walk_bucket(uint64_t bucket, std::string& out, size_t limit, bool whole) {
  TALLY_ASSERT(bucket <= mask_);
  for (const Entry* e = store_.t_[0].buckets[bucket]; e != nullptr; e = e->next_) {
    if (e->cas() > cas_start_) continue;
    if (!copied_.empty()) {
      if (auto it = copied_.find(e->key()); it != copied_.end()) {
        copied_.erase(it);  // the walk is past this key for good
        continue;
      }
    }
    ++entries_;
    if (out.size() >= limit) {
      TALLY_RETURN_IF_ERROR(encode_entry(*e, buffer_));
      note_buffered();
    } else if (whole || (e->type() != ValueType::kSet && e->type() != ValueType::kHash)) {
      // Strings, lists and sorted sets go whole (a large list or sorted set in several records at
      // once); only sets and hashes are sliced across steps.
      TALLY_RETURN_IF_ERROR(encode_entry(*e, out));
    } else {
      TALLY_RETURN_IF_ERROR(begin_container(*e, out));
    }
  }
  return Status::ok();
}

// A resize under way when the image began is finished first (in budgeted steps): the walk needs one
// table whose buckets stay put.
bool ImageWriter::start_walk(size_t budget_bytes) {
  if (store_.rehashing_) {
    store_.rehash_step(std::max<uint64_t>(1, budget_bytes / kRehashBucketBytes));
    if (store_.rehashing_) return false;
  }
  walk_started_ = true;
  mask_ = store_.t_[0].mask;
  cursor_ = 0;
  return true;
}

void ImageWriter::walk(std::string& out, size_t limit, size_t budget_bytes) {
  if (!walk_started_ && !start_walk(budget_bytes)) return;
  TALLY_ASSERT(!store_.rehashing_ && store_.t_[0].mask == mask_);
  uint64_t visits_left = budget_bytes;  // empty buckets are cheap, not free
  while (out.size() < limit) {
    if (!pending_.empty()) {
      Pending& p = pending_.back();
      bool done = false;
      if (Status st = pending_part(p, out, done); !st.is_ok()) return fail(std::move(st));
      if (done) pending_.pop_back();
      continue;
    }
    if (cursor_ > mask_) {
      detach();
      store_.resize_if_needed();  // a shrink may have waited for the image
      return;
    }
    if (visits_left == 0) return;
    --visits_left;
    if (Status st = walk_bucket(cursor_++, out, limit, false); !st.is_ok()) return fail(std::move(st));
  }
}

void ImageWriter::finish_now() {
  TALLY_ASSERT(active_);
  stats_.finished_early = true;
  for (Pending& p : pending_) {
    if (Status st = drain_pending(p, buffer_); !st.is_ok()) return fail(std::move(st));
  }
  pending_.clear();
  if (!walk_started_) {
    if (store_.rehashing_) store_.rehash_step(UINT64_MAX);
    const bool started = start_walk(1);
    TALLY_ASSERT(started);
  }
  for (; cursor_ <= mask_; ++cursor_) {
    if (Status st = walk_bucket(cursor_, buffer_, SIZE_MAX, true); !st.is_ok()) return fail(std::move(st));
  }
  note_buffered();
  detach();
}

void ImageWriter::drain_buffer(std::string& out, size_t limit) {
  const size_t room = limit > out.size() ? limit - out.size() : 0;
  size_t end = read_;
  while (end < buffer_.size() && end - read_ < room) {
    uint32_t r = 0;
    std::memcpy(&r, buffer_.data() + end, sizeof r);
    end += kRecordLengthBytes + r;
  }
  TALLY_ASSERT(end <= buffer_.size());
  out.append(buffer_, read_, end - read_);
  read_ = end;
  if (read_ == buffer_.size()) {
    buffer_.clear();
    read_ = 0;
    if (buffer_.capacity() > kBufferKeepBytes) buffer_.shrink_to_fit();
  } else if (read_ >= kBufferKeepBytes && read_ * 2 >= buffer_.size()) {
    buffer_.erase(0, read_);  // copies at most as much as was handed out: amortised O(1) per byte
    read_ = 0;
  }
}

bool ImageWriter::step(std::string& out, size_t budget_bytes) {
  TALLY_ASSERT(budget_bytes > 0 && budget_bytes <= kStepBudgetBytesMax);
  if (!status_.is_ok()) return true;
  const size_t limit = out.size() + budget_bytes;
  drain_buffer(out, limit);
  if (active_) walk(out, limit, budget_bytes);
  if (!status_.is_ok()) return true;
  return !active_ && buffered_bytes() == 0;
}

}  // namespace tally::store
