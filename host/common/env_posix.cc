// The real Env: POSIX files (pread/pwrite/fdatasync/fallocate), the system clocks, /dev/urandom.
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "host/common/env.h"

namespace tally {

namespace {

constexpr size_t kZeroChunkBytes = 1 << 20;  // allocate()'s zero-filling write size

Status errno_status(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::exhausted(std::move(msg));
  if (err == ENOENT) return Status::not_found(std::move(msg));
  if (err == EEXIST) return Status(Code::kAlreadyExists, std::move(msg));
  return Status::io_error(std::move(msg));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
    size_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return errno_status(errno, "read " + path_);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Status write_at(uint64_t offset, std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t w = ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno_status(errno, "write " + path_);
      }
      done += static_cast<size_t>(w);
    }
    return Status::ok();
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return errno_status(errno, "fdatasync " + path_);
    return Status::ok();
  }

  Status truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return errno_status(errno, "truncate " + path_);
    return Status::ok();
  }

  Status allocate(uint64_t size) override {
    // Reserve the space first (a full disk says so here), then write zeros over it: blocks that were
    // only reserved stay "unwritten" in ext4 and XFS, and the first fdatasync after writing into one
    // must commit the conversion to the journal. Written zeros make later overwrites data-only, so
    // the log's fdatasync flushes data and nothing else (write-ahead logs of databases zero-fill for
    // the same reason).
    const int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (rc != 0) return errno_status(rc, "fallocate " + path_);
    const std::string zeros(kZeroChunkBytes, '\0');
    for (uint64_t at = 0; at < size; at += zeros.size()) {
      TALLY_RETURN_IF_ERROR(write_at(at, std::string_view(zeros).substr(0, std::min<uint64_t>(zeros.size(), size - at))));
    }
    return Status::ok();
  }

  Result<uint64_t> size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return errno_status(errno, "stat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

  int fd() const override { return fd_; }

 private:
  int fd_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  const Clock& clock() const override { return SystemClock::instance(); }

  uint64_t random_seed() override {
    uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
      seed = SystemClock::instance().monotonic_ns() ^ static_cast<uint64_t>(::getpid()) << 32;
    }
    return seed;
  }

  Result<std::unique_ptr<File>> open_file(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kCreate: flags |= O_RDWR | O_CREAT; break;
      case OpenMode::kCreateNew: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return errno_status(errno, "open " + path);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Status create_dirs(const std::string& path) override {
    if (path.empty()) return Status::invalid("empty directory path");
    for (size_t pos = 1; pos <= path.size(); ++pos) {
      if (pos != path.size() && path[pos] != '/') continue;
      const std::string prefix = path.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return errno_status(errno, "mkdir " + prefix);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Status::io_error(path + " is not a directory");
    return Status::ok();
  }

  Result<std::vector<std::string>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return errno_status(errno, "opendir " + path);
    std::vector<std::string> names;
    while (dirent* ent = ::readdir(d)) {
      const std::string_view n(ent->d_name);
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Status remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return errno_status(errno, "unlink " + path);
    return Status::ok();
  }

  Status rename_file(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return errno_status(errno, "rename " + from + " to " + to);
    return Status::ok();
  }

  Status sync_dir(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_status(errno, "open " + path);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return errno_status(err, "fsync " + path);
    return Status::ok();
  }
};

}  // namespace

Env& Env::posix() {
  static PosixEnv env;
  return env;
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p.push_back('/');
  p.append(name);
  return p;
}

Result<std::string> Env::read_file(const std::string& path) {
  auto f = open_file(path, OpenMode::kRead);
  if (!f.is_ok()) return f.status();
  auto size = (*f)->size();
  if (!size.is_ok()) return size.status();
  std::string data(*size, '\0');
  auto n = (*f)->read_at(0, data.data(), data.size());
  if (!n.is_ok()) return n.status();
  data.resize(*n);
  return data;
}

Status Env::write_file_atomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  {
    auto f = open_file(tmp, OpenMode::kCreate);
    if (!f.is_ok()) return f.status();
    TALLY_RETURN_IF_ERROR((*f)->truncate(0));
    TALLY_RETURN_IF_ERROR((*f)->write_at(0, data));
    TALLY_RETURN_IF_ERROR((*f)->sync());
  }
  TALLY_RETURN_IF_ERROR(rename_file(tmp, path));
  const size_t slash = path.rfind('/');
  return sync_dir(slash == std::string::npos ? std::string(".") : (slash == 0 ? std::string("/") : path.substr(0, slash)));
}

}  // namespace tally
