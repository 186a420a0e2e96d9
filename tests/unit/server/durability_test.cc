// A real Server over a FaultEnv: disk faults injected through the Env reach the server as states
// (docs/wal-format.md, "Disk faults while running"): a failed fdatasync or a short write stops writes
// with MISCONF while reads go on, and writes come back once the log has rewritten what was not known
// durable; a full disk refuses writes with "disk full" until there is room again.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "host/common/env.h"
#include "host/server/config.h"
#include "host/server/server.h"
#include "tests/support/fault_env.h"

namespace tally::server {
namespace {

using namespace std::chrono_literals;
using testing::Fault;
using testing::FaultEnv;
using testing::FaultKind;
using testing::FaultOp;

// A blocking RESP client that sends one command and reads one reply line (simple types only).
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~Client() { ::close(fd_); }

  // "+OK", "$1" + value, "-ERR ..." : the first line, and for a bulk string its value.
  std::string call(const std::string& inline_command) {
    const std::string line = inline_command + "\r\n";
    EXPECT_EQ(::send(fd_, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
    std::string first = read_line();
    if (!first.empty() && first[0] == '$' && first != "$-1") return read_line();
    return first;
  }

 private:
  std::string read_line() {
    while (buf_.find("\r\n") == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return "<timeout>";
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "<closed>";
      buf_.append(chunk, static_cast<size_t>(n));
    }
    const size_t eol = buf_.find("\r\n");
    std::string out = buf_.substr(0, eol);
    buf_.erase(0, eol + 2);
    return out;
  }

  int fd_ = -1;
  std::string buf_;
};

class DurableServer : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tally-durability-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    env_ = std::make_unique<FaultEnv>(Env::posix(), 7);
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void start(uint64_t segment_bytes = 1 << 20) {
    Config cfg;
    cfg.port = 0;
    cfg.memcached_port = 0;
    cfg.admin_port = 0;
    cfg.threads = 1;
    cfg.partitions = 4;
    cfg.dir = dir_;
    cfg.durability = "fsync";
    cfg.wal_segment_bytes = segment_bytes;
    ASSERT_TRUE(validate(cfg).is_ok());
    server_ = std::make_unique<Server>(cfg, *env_);
    const Status st = server_->start();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  // Retries `command` until its reply starts with `want` (the server's tick retries a failed log).
  static std::string eventually(Client& c, const std::string& command, const std::string& want) {
    std::string got;
    for (int i = 0; i < 200; ++i) {
      got = c.call(command);
      if (got.rfind(want, 0) == 0) return got;
      std::this_thread::sleep_for(20ms);
    }
    return got;
  }

  std::string dir_;
  std::unique_ptr<FaultEnv> env_;
  std::unique_ptr<Server> server_;
};

TEST_F(DurableServer, AFailedFsyncStopsWritesKeepsReadsAndTheLogRecovers) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.call("SET before 1"), "+OK");
  // The next sync of a log segment fails: the write waiting for it has an unknown outcome.
  // The segment being written (the log prepares the next one in the background, which must not take
  // the fault instead).
  env_->inject(Fault{FaultOp::kSync, FaultKind::kIoError, "*00000000000000000001.wal", 0, 1});
  const std::string failed = c.call("SET during 2");
  EXPECT_EQ(failed.rfind("-MISCONF", 0), 0u) << failed;
  EXPECT_NE(failed.find("outcome of this write is unknown"), std::string::npos) << failed;
  EXPECT_EQ(c.call("GET before"), "1");  // reads go on
  // The log rewrote the unsynced records into a fresh segment on the shard's tick: writes resume.
  EXPECT_EQ(eventually(c, "SET after 3", "+OK"), "+OK");
  EXPECT_EQ(c.call("GET after"), "3");
  EXPECT_EQ(c.call("GET during"), "2");  // its outcome was unknown; it was applied once durable
  // And it all survives a restart.
  server_->stop();
  server_.reset();
  env_->clear_faults();
  start();
  Client d(server_->port());
  EXPECT_EQ(d.call("GET before"), "1");
  EXPECT_EQ(d.call("GET during"), "2");
  EXPECT_EQ(d.call("GET after"), "3");
}

TEST_F(DurableServer, AShortWriteIsAFailedWriteNotAnAcknowledgedOne) {
  start();
  Client c(server_->port());
  ASSERT_EQ(c.call("SET a 1"), "+OK");
  env_->inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, "*00000000000000000001.wal", 0, 1, 20});
  const std::string failed = c.call("SET b 2");
  EXPECT_EQ(failed.rfind("-MISCONF", 0), 0u) << failed;
  EXPECT_EQ(eventually(c, "SET c 3", "+OK"), "+OK");
  server_->stop();
  server_.reset();
  start();
  Client d(server_->port());
  EXPECT_EQ(d.call("GET a"), "1");
  EXPECT_EQ(d.call("GET b"), "2");
  EXPECT_EQ(d.call("GET c"), "3");
}

TEST_F(DurableServer, AFullDiskRefusesWritesUntilThereIsRoom) {
  start(64 << 10);  // small segments: the log needs new ones soon
  Client c(server_->port());
  ASSERT_EQ(c.call("SET before 1"), "+OK");
  env_->set_space_limit(env_->space_used());  // not one byte more
  const std::string value(8000, 'x');
  std::string reply;
  for (int i = 0; i < 100 && reply.find("disk full") == std::string::npos; ++i) {
    reply = c.call("SET k" + std::to_string(i) + " " + value);
  }
  EXPECT_NE(reply.find("disk full"), std::string::npos) << reply;
  EXPECT_EQ(c.call("GET before"), "1");
  env_->clear_space_limit();
  EXPECT_EQ(eventually(c, "SET after 1", "+OK"), "+OK");
}

}  // namespace
}  // namespace tally::server
