// MemEnv: files as byte strings with their pending (unsynced) operations, directories as name maps
// with their pending name operations; crash() replays a random prefix of each.
#include "tests/support/mem_env.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace tally::testing {

namespace {

Status stale() { return Status::io_error("memenv: file handle from before a crash"); }

}  // namespace

struct MemEnv::Inode {
  enum class Kind : uint8_t { kWrite, kTruncate, kAllocate };
  struct Op {
    Kind kind = Kind::kWrite;
    uint64_t offset = 0;  // kWrite
    std::string bytes;    // kWrite
    uint64_t size = 0;    // kTruncate, kAllocate
  };
  std::string data;    // what reads see
  std::string synced;  // what survives a crash for sure
  std::vector<Op> pending;

  static void apply(std::string& d, const Op& op, size_t bytes) {
    switch (op.kind) {
      case Kind::kWrite:
        if (d.size() < op.offset + bytes) d.resize(op.offset + bytes, '\0');
        std::memcpy(d.data() + op.offset, op.bytes.data(), bytes);
        break;
      case Kind::kTruncate: d.resize(op.size, '\0'); break;
      case Kind::kAllocate:
        if (d.size() < op.size) d.resize(op.size, '\0');
        break;
    }
  }
  void record(Op op) {
    apply(data, op, op.bytes.size());
    pending.push_back(std::move(op));
  }
  void sync() {
    for (const Op& op : pending) apply(synced, op, op.bytes.size());
    pending.clear();
  }
  void crash(Rng& rng) {
    const size_t keep = rng.uniform(pending.size() + 1);
    for (size_t i = 0; i < keep; ++i) apply(synced, pending[i], pending[i].bytes.size());
    if (keep < pending.size() && pending[keep].kind == Kind::kWrite) {
      apply(synced, pending[keep], rng.uniform(pending[keep].bytes.size() + 1));
    }
    pending.clear();
    data = synced;
  }
};

struct MemEnv::NameOp {
  enum class Kind : uint8_t { kLink, kUnlink, kRename };
  Kind kind = Kind::kLink;
  std::string name;
  std::string to;  // kRename
  std::shared_ptr<Inode> inode;
};

struct MemEnv::Dir {
  std::map<std::string, std::shared_ptr<Inode>> live;
  std::map<std::string, std::shared_ptr<Inode>> durable;
  std::vector<NameOp> pending;

  static void apply(std::map<std::string, std::shared_ptr<Inode>>& names, const NameOp& op) {
    switch (op.kind) {
      case NameOp::Kind::kLink: names[op.name] = op.inode; break;
      case NameOp::Kind::kUnlink: names.erase(op.name); break;
      case NameOp::Kind::kRename:
        names.erase(op.name);
        names[op.to] = op.inode;
        break;
    }
  }
  void record(NameOp op) {
    apply(live, op);
    pending.push_back(std::move(op));
  }
};

class MemEnv::MemFile final : public File {
 public:
  MemFile(MemEnv& env, std::shared_ptr<Inode> inode, bool writable)
      : env_(env), inode_(std::move(inode)), writable_(writable), generation_(env.generation_) {}

  Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    const std::string& d = inode_->data;
    if (offset >= d.size()) return size_t{0};
    const size_t got = std::min<uint64_t>(n, d.size() - offset);
    std::memcpy(buf, d.data() + offset, got);
    return got;
  }
  Status write_at(uint64_t offset, std::string_view data) override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    if (!writable_) return Status::io_error("memenv: file opened read-only");
    inode_->record(Inode::Op{Inode::Kind::kWrite, offset, std::string(data), 0});
    return Status::ok();
  }
  Status sync() override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    inode_->sync();
    return Status::ok();
  }
  Status truncate(uint64_t size) override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    if (!writable_) return Status::io_error("memenv: file opened read-only");
    inode_->record(Inode::Op{Inode::Kind::kTruncate, 0, {}, size});
    return Status::ok();
  }
  Status allocate(uint64_t size) override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    if (!writable_) return Status::io_error("memenv: file opened read-only");
    inode_->record(Inode::Op{Inode::Kind::kAllocate, 0, {}, size});
    return Status::ok();
  }
  Result<uint64_t> size() override {
    std::lock_guard lock(env_.mu_);
    if (generation_ != env_.generation_) return stale();
    return static_cast<uint64_t>(inode_->data.size());
  }

 private:
  MemEnv& env_;
  std::shared_ptr<Inode> inode_;
  const bool writable_;
  const uint64_t generation_;
};

MemEnv::MemEnv(uint64_t seed) : seeds_(seed) { dirs_["/"] = std::make_unique<Dir>(); }
MemEnv::~MemEnv() = default;

uint64_t MemEnv::random_seed() {
  std::lock_guard lock(mu_);
  return seeds_.next();
}

std::pair<std::string, std::string> MemEnv::split(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

std::shared_ptr<MemEnv::Inode> MemEnv::find(const std::string& path) {
  auto [dir, name] = split(path);
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) return nullptr;
  auto f = d->second->live.find(name);
  return f == d->second->live.end() ? nullptr : f->second;
}

Result<std::unique_ptr<File>> MemEnv::open_file(const std::string& path, OpenMode mode) {
  std::lock_guard lock(mu_);
  auto [dir, name] = split(path);
  auto d = dirs_.find(dir);
  if (d == dirs_.end() || name.empty()) return Status::not_found("memenv: no directory for " + path);
  if (dirs_.count(path)) return Status::io_error("memenv: " + path + " is a directory");
  std::shared_ptr<Inode> inode = find(path);
  if (inode && mode == OpenMode::kCreateNew) return Status(Code::kAlreadyExists, "memenv: " + path + " exists");
  if (!inode) {
    if (mode == OpenMode::kRead || mode == OpenMode::kReadWrite) return Status::not_found("memenv: no file " + path);
    inode = std::make_shared<Inode>();
    d->second->record(NameOp{NameOp::Kind::kLink, name, {}, inode});
  }
  return std::unique_ptr<File>(new MemFile(*this, inode, mode != OpenMode::kRead));
}

Status MemEnv::create_dirs(const std::string& path) {
  std::lock_guard lock(mu_);
  if (path.empty()) return Status::invalid("memenv: empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (find(prefix)) return Status::io_error("memenv: " + prefix + " is a file");
    if (!dirs_.count(prefix)) dirs_[prefix] = std::make_unique<Dir>();
  }
  return Status::ok();
}

Result<std::vector<std::string>> MemEnv::list_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  auto d = dirs_.find(path);
  if (d == dirs_.end()) return Status::not_found("memenv: no directory " + path);
  std::set<std::string> names;
  for (const auto& [name, inode] : d->second->live) names.insert(name);
  for (const auto& [other, dir] : dirs_) {
    if (other != path && split(other).first == path) names.insert(split(other).second);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

bool MemEnv::exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return dirs_.count(path) > 0 || find(path) != nullptr;
}

Status MemEnv::remove_file(const std::string& path) {
  std::lock_guard lock(mu_);
  auto [dir, name] = split(path);
  std::shared_ptr<Inode> inode = find(path);
  if (!inode) return Status::not_found("memenv: no file " + path);
  dirs_[dir]->record(NameOp{NameOp::Kind::kUnlink, name, {}, inode});
  return Status::ok();
}

Status MemEnv::rename_file(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto [from_dir, from_name] = split(from);
  auto [to_dir, to_name] = split(to);
  std::shared_ptr<Inode> inode = find(from);
  if (!inode) return Status::not_found("memenv: no file " + from);
  if (!dirs_.count(to_dir)) return Status::not_found("memenv: no directory " + to_dir);
  if (from_dir == to_dir) {
    dirs_[from_dir]->record(NameOp{NameOp::Kind::kRename, from_name, to_name, inode});
  } else {
    dirs_[from_dir]->record(NameOp{NameOp::Kind::kUnlink, from_name, {}, inode});
    dirs_[to_dir]->record(NameOp{NameOp::Kind::kLink, to_name, {}, inode});
  }
  return Status::ok();
}

Status MemEnv::sync_dir(const std::string& path) {
  std::lock_guard lock(mu_);
  auto d = dirs_.find(path);
  if (d == dirs_.end()) return Status::not_found("memenv: no directory " + path);
  d->second->durable = d->second->live;
  d->second->pending.clear();
  return Status::ok();
}

void MemEnv::crash(Rng& rng) {
  std::lock_guard lock(mu_);
  for (auto& [path, dir] : dirs_) {
    const size_t keep = rng.uniform(dir->pending.size() + 1);
    for (size_t i = 0; i < keep; ++i) Dir::apply(dir->durable, dir->pending[i]);
    dir->pending.clear();
    dir->live = dir->durable;
  }
  // Every surviving file once, in name order, so the same seed tears the same bytes.
  std::set<Inode*> done;
  for (auto& [path, dir] : dirs_) {
    for (auto& [name, inode] : dir->live) {
      if (done.insert(inode.get()).second) inode->crash(rng);
    }
  }
  ++generation_;
}

void MemEnv::drop_unsynced(const std::string& path) {
  std::lock_guard lock(mu_);
  if (std::shared_ptr<Inode> inode = find(path)) {
    inode->pending.clear();
    inode->data = inode->synced;
  }
}

size_t MemEnv::unsynced_writes(const std::string& path) {
  std::lock_guard lock(mu_);
  std::shared_ptr<Inode> inode = find(path);
  return inode ? inode->pending.size() : 0;
}

size_t MemEnv::unsynced_names(const std::string& dir) {
  std::lock_guard lock(mu_);
  auto d = dirs_.find(dir);
  return d == dirs_.end() ? 0 : d->second->pending.size();
}

}  // namespace tally::testing
