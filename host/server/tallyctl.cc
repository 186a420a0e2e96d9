// tallyctl: the admin CLI. Speaks RESP to a tallyd (info, ping, config get/set, shutdown) and HTTP to
// its admin port (metrics); `wal` works offline on a node directory. Exit status: 0 success, 1 an
// error reply, 2 usage or connection failure (wal verify: 0 clean, 1 torn tail only, 2 corruption).
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/log.h"
#include "host/wal/wal_tool.h"

namespace {

constexpr size_t kReplyBytesMax = 64u << 20;

void usage() {
  std::fputs(
      "usage: tallyctl [-h HOST] [-p PORT] [-a PASSWORD] [--admin-port N (default: PORT + 2742)] COMMAND\n"
      "commands:\n"
      "  ping                      check the server answers\n"
      "  info [SECTION]            server information (INFO)\n"
      "  config get PATTERN        configuration parameters\n"
      "  config set NAME VALUE     change a parameter at run time\n"
      "  metrics                   Prometheus metrics from the admin port\n"
      "  shutdown                  stop the server\n"
      "  wal verify DIR            check every WAL of a node directory, offline (exit 0 clean,\n"
      "                            1 torn tail only, 2 corruption)\n"
      "  wal truncate DIR --shard N --at SEQ:OFFSET\n"
      "                            cut shard N's WAL at a bad record (everything from it is lost)\n",
      stderr);
}

// `tallyctl wal ...`: offline, on the node directory; no server involved.
int wal_command(const std::vector<std::string>& cmd) {
  tally::log::set_level("off");  // the report below says it all; the log would repeat it on stdout
  std::string out;
  int rc = 2;
  if (cmd.size() == 3 && cmd[1] == "verify") {
    rc = tally::wal::verify_command(tally::Env::posix(), cmd[2], out);
  } else if (cmd.size() == 7 && cmd[1] == "truncate") {
    std::string shard, at;
    for (size_t i = 3; i + 1 < cmd.size(); i += 2) {
      if (cmd[i] == "--shard") shard = cmd[i + 1];
      if (cmd[i] == "--at") at = cmd[i + 1];
    }
    char* end = nullptr;
    const unsigned long n = shard.empty() ? 0 : std::strtoul(shard.c_str(), &end, 10);
    if (shard.empty() || at.empty() || *end != '\0' || n > UINT32_MAX) {
      usage();
      return 2;
    }
    rc = tally::wal::truncate_command(tally::Env::posix(), cmd[2], static_cast<uint32_t>(n), at, out);
  } else {
    usage();
    return 2;
  }
  std::fputs(out.c_str(), stdout);
  return rc;
}

int connect_to(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, 0);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  bool line(std::string& out) {
    for (;;) {
      size_t p = buf_.find("\r\n", pos_);
      if (p != std::string::npos) {
        out = buf_.substr(pos_, p - pos_);
        pos_ = p + 2;
        return true;
      }
      if (!fill()) return false;
    }
  }
  bool bytes(size_t n, std::string& out) {
    while (buf_.size() - pos_ < n + 2) {
      if (!fill()) return false;
    }
    out = buf_.substr(pos_, n);
    pos_ += n + 2;
    return true;
  }

 private:
  bool fill() {
    if (buf_.size() > kReplyBytesMax) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

// Prints a RESP2 reply in redis-cli's plain style; returns false on an error reply or a broken stream.
bool print_reply(Reader& r, int depth, bool& error) {
  std::string l;
  if (!r.line(l) || l.empty()) return false;
  std::string indent(static_cast<size_t>(depth) * 2, ' ');
  switch (l[0]) {
    case '+':
      std::printf("%s%s\n", indent.c_str(), l.c_str() + 1);
      return true;
    case '-':
      std::printf("%s(error) %s\n", indent.c_str(), l.c_str() + 1);
      error = true;
      return true;
    case ':':
      std::printf("%s%s\n", indent.c_str(), l.c_str() + 1);
      return true;
    case '$': {
      long n = std::strtol(l.c_str() + 1, nullptr, 10);
      if (n < 0) {
        std::printf("%s(nil)\n", indent.c_str());
        return true;
      }
      std::string body;
      if (!r.bytes(static_cast<size_t>(n), body)) return false;
      std::printf("%s%s\n", indent.c_str(), body.c_str());
      return true;
    }
    case '*': {
      long n = std::strtol(l.c_str() + 1, nullptr, 10);
      for (long i = 0; i < n; ++i) {
        if (!print_reply(r, depth + 1, error)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

std::string encode(const std::vector<std::string>& argv) {
  std::string s = "*";
  s.append(std::to_string(argv.size())).append("\r\n");
  for (const auto& a : argv) s.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
  return s;
}

int http_metrics(const std::string& host, int port) {
  int fd = connect_to(host, port);
  if (fd < 0) {
    std::fprintf(stderr, "tallyctl: cannot connect to admin port %s:%d\n", host.c_str(), port);
    return 2;
  }
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n");
  std::string all;
  char tmp[65536];
  for (ssize_t n; (n = recv(fd, tmp, sizeof tmp, 0)) > 0;) all.append(tmp, static_cast<size_t>(n));
  close(fd);
  size_t body = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    std::fprintf(stderr, "tallyctl: bad answer from the admin port\n");
    return 1;
  }
  std::fwrite(all.data() + body + 4, 1, all.size() - body - 4, stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", password;
  int port = 6379, admin_port = -1;  // -1: the admin port follows the client port, as in tallyd
  std::vector<std::string> cmd;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-h" || a == "-p" || a == "-a" || a == "--admin-port") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "-h") host = v;
      if (a == "-p") port = std::atoi(v.c_str());
      if (a == "-a") password = v;
      if (a == "--admin-port") admin_port = std::atoi(v.c_str());
    } else if (a == "--help") {
      usage();
      return 0;
    } else {
      cmd.push_back(a);
    }
  }
  if (cmd.empty()) {
    usage();
    return 2;
  }
  if (admin_port < 0) admin_port = port + 2742;
  if (cmd[0] == "metrics") return http_metrics(host, admin_port);
  if (cmd[0] == "wal") return wal_command(cmd);
  std::vector<std::string> request;
  if (cmd[0] == "ping" && cmd.size() == 1) {
    request = {"PING"};
  } else if (cmd[0] == "info" && cmd.size() <= 2) {
    request = cmd;
  } else if (cmd[0] == "config" && cmd.size() == 3 && cmd[1] == "get") {
    request = cmd;
  } else if (cmd[0] == "config" && cmd.size() == 4 && cmd[1] == "set") {
    request = cmd;
  } else if (cmd[0] == "shutdown" && cmd.size() == 1) {
    request = {"SHUTDOWN"};
  } else {
    usage();
    return 2;
  }
  int fd = connect_to(host, port);
  if (fd < 0) {
    std::fprintf(stderr, "tallyctl: cannot connect to %s:%d\n", host.c_str(), port);
    return 2;
  }
  Reader r(fd);
  bool error = false;
  if (!password.empty()) {
    send_all(fd, encode({"AUTH", password}));
    if (!print_reply(r, 0, error) || error) return 1;
  }
  if (!send_all(fd, encode(request))) return 2;
  if (request[0] == "SHUTDOWN") {
    std::string l;
    if (r.line(l) && !l.empty() && l[0] == '-') {
      std::printf("(error) %s\n", l.c_str() + 1);
      return 1;
    }
    std::printf("OK\n");
    return 0;
  }
  if (!print_reply(r, 0, error)) {
    std::fprintf(stderr, "tallyctl: connection closed\n");
    return 2;
  }
  close(fd);
  return error ? 1 : 0;
}
