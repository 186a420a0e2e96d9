// FaultEnv: rules matched per call; files wrapped so their writes, syncs and allocations pass the
// rules and the space limit first.
#include "tests/support/fault_env.h"

#include <fnmatch.h>

#include <algorithm>

namespace tally::testing {

namespace {

const char* op_name(FaultOp op) {
  switch (op) {
    case FaultOp::kOpen: return "open";
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "sync";
    case FaultOp::kAllocate: return "allocate";
    case FaultOp::kTruncate: return "truncate";
    case FaultOp::kSyncDir: return "sync_dir";
    case FaultOp::kRemove: return "remove";
    case FaultOp::kRename: return "rename";
    case FaultOp::kAnyChange: return "any change";
  }
  return "?";
}

}  // namespace

class FaultEnv::FaultFile final : public File {
 public:
  FaultFile(FaultEnv& env, std::unique_ptr<File> base, std::string path)
      : env_(env), base_(std::move(base)), path_(std::move(path)) {}

  Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override { return base_->read_at(offset, buf, n); }

  Status write_at(uint64_t offset, std::string_view data) override {
    if (auto f = env_.check(FaultOp::kWrite, path_)) {
      if (f->kind == FaultKind::kShortWrite && !data.empty()) {
        uint64_t n = f->short_bytes;
        if (n == kFaultRandomBytes) {
          std::lock_guard lock(env_.mu_);
          n = env_.rng_.uniform(data.size());
        }
        n = std::min<uint64_t>(n, data.size());
        if (n > 0 && base_->write_at(offset, data.substr(0, n)).is_ok()) grew(offset + n);
      }
      return env_.injected(*f, FaultOp::kWrite, path_);
    }
    const uint64_t end = offset + data.size();
    if (auto room = env_.room_short(path_, end)) {
      // Only part of the write fits: it goes in, then the disk is full.
      const uint64_t fits_to = known_size() + *room;
      if (fits_to > offset && base_->write_at(offset, data.substr(0, fits_to - offset)).is_ok()) grew(fits_to);
      return Status::exhausted("injected ENOSPC: write " + path_ + " past the space limit");
    }
    Status st = base_->write_at(offset, data);
    if (st.is_ok()) grew(end);
    return st;
  }

  Status sync() override {
    if (auto f = env_.check(FaultOp::kSync, path_)) {
      if (env_.on_failed_sync) env_.on_failed_sync(path_);
      return env_.injected(*f, FaultOp::kSync, path_);
    }
    return base_->sync();
  }

  Status truncate(uint64_t size) override {
    if (auto f = env_.check(FaultOp::kTruncate, path_)) return env_.injected(*f, FaultOp::kTruncate, path_);
    Status st = base_->truncate(size);
    if (st.is_ok()) env_.set_size(path_, size);
    return st;
  }

  Status allocate(uint64_t size) override {
    if (auto f = env_.check(FaultOp::kAllocate, path_)) return env_.injected(*f, FaultOp::kAllocate, path_);
    if (env_.room_short(path_, size)) {
      return Status::exhausted("injected ENOSPC: allocate " + path_ + " past the space limit");
    }
    Status st = base_->allocate(size);
    if (st.is_ok()) grew(size);
    return st;
  }

  Result<uint64_t> size() override { return base_->size(); }

 private:
  uint64_t known_size() {
    std::lock_guard lock(env_.mu_);
    return env_.sizes_[path_];
  }
  void grew(uint64_t end) {
    std::lock_guard lock(env_.mu_);
    uint64_t& s = env_.sizes_[path_];
    s = std::max(s, end);
  }

  FaultEnv& env_;
  std::unique_ptr<File> base_;
  const std::string path_;
};

FaultEnv::FaultEnv(Env& base, uint64_t seed) : base_(base), rng_(seed) {}
FaultEnv::~FaultEnv() = default;

int FaultEnv::inject(const Fault& fault) {
  std::lock_guard lock(mu_);
  rules_.push_back(Rule{fault, 0, 0});
  return static_cast<int>(rules_.size() - 1);
}

uint64_t FaultEnv::fired(int id) const {
  std::lock_guard lock(mu_);
  TALLY_ASSERT(id >= 0 && static_cast<size_t>(id) < rules_.size());
  return rules_[static_cast<size_t>(id)].fired;
}

void FaultEnv::clear_faults() {
  std::lock_guard lock(mu_);
  rules_.clear();
}

uint64_t FaultEnv::calls(FaultOp op) const {
  std::lock_guard lock(mu_);
  return calls_[static_cast<size_t>(op)];
}

std::optional<Fault> FaultEnv::check(FaultOp op, const std::string& path) {
  std::lock_guard lock(mu_);
  ++calls_[static_cast<size_t>(op)];
  if (op != FaultOp::kOpen) ++calls_[static_cast<size_t>(FaultOp::kAnyChange)];
  std::optional<Fault> fire;
  for (Rule& r : rules_) {
    const bool op_matches = r.fault.op == op || (r.fault.op == FaultOp::kAnyChange && op != FaultOp::kOpen);
    if (!op_matches || ::fnmatch(r.fault.pattern.c_str(), path.c_str(), 0) != 0) continue;
    ++r.seen;
    if (!fire && r.seen > r.fault.skip && r.seen - r.fault.skip <= r.fault.times) {
      ++r.fired;
      fire = r.fault;
    }
  }
  return fire;
}

Status FaultEnv::injected(const Fault& f, FaultOp op, const std::string& path) {
  const std::string what = std::string(op_name(op)) + " " + path;
  if (f.kind == FaultKind::kNoSpace) return Status::exhausted("injected ENOSPC: " + what);
  return Status::io_error("injected EIO: " + what);
}

std::optional<uint64_t> FaultEnv::room_short(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  if (!space_limit_ || size <= sizes_[path]) return std::nullopt;
  uint64_t used = 0;
  for (const auto& [p, s] : sizes_) used += s;
  const uint64_t room = *space_limit_ > used ? *space_limit_ - used : 0;
  if (size - sizes_[path] <= room) return std::nullopt;
  return room;
}

void FaultEnv::set_size(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  sizes_[path] = size;
}

void FaultEnv::set_space_limit(uint64_t bytes) {
  std::lock_guard lock(mu_);
  space_limit_ = bytes;
}

void FaultEnv::clear_space_limit() {
  std::lock_guard lock(mu_);
  space_limit_.reset();
}

uint64_t FaultEnv::space_used() const {
  std::lock_guard lock(mu_);
  uint64_t used = 0;
  for (const auto& [p, s] : sizes_) used += s;
  return used;
}

void FaultEnv::reset_space_accounting() {
  std::lock_guard lock(mu_);
  sizes_.clear();
}

Result<std::unique_ptr<File>> FaultEnv::open_file(const std::string& path, OpenMode mode) {
  if (auto f = check(FaultOp::kOpen, path)) return injected(*f, FaultOp::kOpen, path);
  auto file = base_.open_file(path, mode);
  if (!file.is_ok()) return file.status();
  auto size = (*file)->size();
  if (size.is_ok()) {
    std::lock_guard lock(mu_);
    if (!sizes_.count(path)) sizes_[path] = *size;
  }
  return std::unique_ptr<File>(new FaultFile(*this, std::move(*file), path));
}

Status FaultEnv::remove_file(const std::string& path) {
  if (auto f = check(FaultOp::kRemove, path)) return injected(*f, FaultOp::kRemove, path);
  Status st = base_.remove_file(path);
  if (st.is_ok()) {
    std::lock_guard lock(mu_);
    sizes_.erase(path);
  }
  return st;
}

Status FaultEnv::rename_file(const std::string& from, const std::string& to) {
  if (auto f = check(FaultOp::kRename, from)) return injected(*f, FaultOp::kRename, from);
  Status st = base_.rename_file(from, to);
  if (st.is_ok()) {
    std::lock_guard lock(mu_);
    auto it = sizes_.find(from);
    if (it != sizes_.end()) {
      sizes_[to] = it->second;
      sizes_.erase(from);
    }
  }
  return st;
}

Status FaultEnv::sync_dir(const std::string& path) {
  if (auto f = check(FaultOp::kSyncDir, path)) return injected(*f, FaultOp::kSyncDir, path);
  return base_.sync_dir(path);
}

Status FaultEnv::flip_bit(const std::string& path, uint64_t offset, int bit) {
  TALLY_ASSERT(bit >= 0 && bit < 8);
  auto file = base_.open_file(path, OpenMode::kReadWrite);
  if (!file.is_ok()) return file.status();
  char c = 0;
  auto n = (*file)->read_at(offset, &c, 1);
  if (!n.is_ok()) return n.status();
  if (*n != 1) return Status::invalid("flip_bit: offset past the end of " + path);
  c = static_cast<char>(c ^ (1 << bit));
  TALLY_RETURN_IF_ERROR((*file)->write_at(offset, std::string_view(&c, 1)));
  return (*file)->sync();
}

Status FaultEnv::truncate_file(const std::string& path, uint64_t size) {
  auto file = base_.open_file(path, OpenMode::kReadWrite);
  if (!file.is_ok()) return file.status();
  TALLY_RETURN_IF_ERROR((*file)->truncate(size));
  TALLY_RETURN_IF_ERROR((*file)->sync());
  set_size(path, size);
  return Status::ok();
}

Status FaultEnv::zero_range(const std::string& path, uint64_t offset, uint64_t bytes) {
  auto file = base_.open_file(path, OpenMode::kReadWrite);
  if (!file.is_ok()) return file.status();
  TALLY_RETURN_IF_ERROR((*file)->write_at(offset, std::string(bytes, '\0')));
  return (*file)->sync();
}

}  // namespace tally::testing
