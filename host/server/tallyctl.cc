// tallyctl: the admin CLI. Speaks RESP to a tallyd (info, ping, config get/set, shutdown) and HTTP to
// its admin port (metrics); `wal` works offline on a node directory. Exit status: 0 success, 1 an
// error reply, 2 usage or connection failure (wal verify: 0 clean, 1 torn tail only, 2 corruption).
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <algorithm>
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
      "  cluster create HOST:PORT... [--replicas N]\n"
      "                            form a cluster of members (started with --peer-port)\n"
      "  cluster status            the nodes and the slots each leads (CLUSTER NODES)\n"
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

// One reply as flat strings: a simple string, error (error set), integer or bulk becomes one item; an
// array its elements in order (nested arrays flattened). False on a broken stream.
bool read_flat(Reader& r, std::vector<std::string>& out, bool& error) {
  std::string l;
  if (!r.line(l) || l.empty()) return false;
  switch (l[0]) {
    case '+':
    case ':':
      out.push_back(l.substr(1));
      return true;
    case '-':
      out.push_back(l.substr(1));
      error = true;
      return true;
    case '$': {
      long n = std::strtol(l.c_str() + 1, nullptr, 10);
      std::string body;
      if (n >= 0 && !r.bytes(static_cast<size_t>(n), body)) return false;
      out.push_back(body);
      return true;
    }
    case '*': {
      long n = std::strtol(l.c_str() + 1, nullptr, 10);
      for (long i = 0; i < n; ++i) {
        if (!read_flat(r, out, error)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// A request on an open connection; the reply flattened. False (with `why`) on an error reply or a
// broken connection.
bool call(int fd, Reader& r, const std::vector<std::string>& request, std::vector<std::string>& reply,
          std::string& why) {
  reply.clear();
  bool error = false;
  if (!send_all(fd, encode(request)) || !read_flat(r, reply, error)) {
    why = "connection closed";
    return false;
  }
  if (error) {
    why = reply.empty() ? "error" : reply[0];
    return false;
  }
  return true;
}

// tallyctl cluster create HOST:PORT... [--replicas N]: asks every node its id and peer port, then
// hands each the whole membership (TALLY CLUSTER-SETUP), numbering the nodes in the order given.
int cluster_create(const std::vector<std::string>& cmd, const std::string& password) {
  std::vector<std::pair<std::string, int>> addrs;
  long replicas = 0;
  for (size_t i = 2; i < cmd.size(); ++i) {
    if (cmd[i] == "--replicas" && i + 1 < cmd.size()) {
      replicas = std::strtol(cmd[++i].c_str(), nullptr, 10);
      continue;
    }
    const size_t colon = cmd[i].rfind(':');
    const long port = colon == std::string::npos ? 0 : std::strtol(cmd[i].c_str() + colon + 1, nullptr, 10);
    if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
      std::fprintf(stderr, "tallyctl: '%s' is not HOST:PORT\n", cmd[i].c_str());
      return 2;
    }
    addrs.emplace_back(cmd[i].substr(0, colon), static_cast<int>(port));
  }
  if (addrs.empty()) {
    usage();
    return 2;
  }
  if (replicas <= 0) replicas = std::min<long>(3, static_cast<long>(addrs.size()));
  struct Node {
    int fd = -1;
    std::unique_ptr<Reader> reader;
    std::string id, peer_port, zone = "-", rack = "-";
  };
  std::vector<Node> nodes(addrs.size());
  std::vector<std::string> reply;
  std::string why;
  for (size_t i = 0; i < addrs.size(); ++i) {
    Node& n = nodes[i];
    n.fd = connect_to(addrs[i].first, addrs[i].second);
    if (n.fd < 0) {
      std::fprintf(stderr, "tallyctl: cannot connect to %s:%d\n", addrs[i].first.c_str(), addrs[i].second);
      return 2;
    }
    n.reader = std::make_unique<Reader>(n.fd);
    if (!password.empty() && !call(n.fd, *n.reader, {"AUTH", password}, reply, why)) {
      std::fprintf(stderr, "tallyctl: %s:%d: %s\n", addrs[i].first.c_str(), addrs[i].second, why.c_str());
      return 1;
    }
    if (!call(n.fd, *n.reader, {"CLUSTER", "MYID"}, reply, why) || reply.size() != 1) {
      std::fprintf(stderr, "tallyctl: %s:%d: CLUSTER MYID: %s\n", addrs[i].first.c_str(), addrs[i].second, why.c_str());
      return 1;
    }
    n.id = reply[0];
    if (!call(n.fd, *n.reader, {"CONFIG", "GET", "peer-port"}, reply, why) || reply.size() != 2 || reply[1] == "0") {
      std::fprintf(stderr, "tallyctl: %s:%d is not a cluster member (start it with --peer-port N)\n",
                   addrs[i].first.c_str(), addrs[i].second);
      return 1;
    }
    n.peer_port = reply[1];
    // Failure domains (a node that does not know the settings has none).
    if (call(n.fd, *n.reader, {"CONFIG", "GET", "zone"}, reply, why) && reply.size() == 2 && !reply[1].empty()) {
      n.zone = reply[1];
    }
    if (call(n.fd, *n.reader, {"CONFIG", "GET", "rack"}, reply, why) && reply.size() == 2 && !reply[1].empty()) {
      n.rack = reply[1];
    }
  }
  const bool labelled = std::any_of(nodes.begin(), nodes.end(), [](const Node& n) { return n.zone != "-" || n.rack != "-"; });
  int rc = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::vector<std::string> request = {"TALLY", "CLUSTER-SETUP", std::to_string(i + 1), std::to_string(replicas)};
    for (size_t j = 0; j < nodes.size(); ++j) {
      request.insert(request.end(), {nodes[j].id, addrs[j].first, std::to_string(addrs[j].second), nodes[j].peer_port});
    }
    if (labelled) {
      request.push_back("LABELS");
      for (const Node& n : nodes) request.insert(request.end(), {n.zone, n.rack});
    }
    if (call(nodes[i].fd, *nodes[i].reader, request, reply, why)) {
      std::printf("node %zu %s at %s:%d: joined\n", i + 1, nodes[i].id.c_str(), addrs[i].first.c_str(), addrs[i].second);
    } else {
      std::printf("node %zu %s at %s:%d: %s\n", i + 1, nodes[i].id.c_str(), addrs[i].first.c_str(), addrs[i].second,
                  why.c_str());
      rc = 1;
    }
    close(nodes[i].fd);
  }
  if (rc == 0) {
    std::printf("cluster of %zu nodes formed, %ld replicas per partition\n", nodes.size(), replicas);
  }
  return rc;
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
  if (cmd[0] == "cluster" && cmd.size() >= 2 && cmd[1] == "create") return cluster_create(cmd, password);
  std::vector<std::string> request;
  if (cmd[0] == "ping" && cmd.size() == 1) {
    request = {"PING"};
  } else if (cmd[0] == "info" && cmd.size() <= 2) {
    request = cmd;
  } else if (cmd[0] == "config" && cmd.size() == 3 && cmd[1] == "get") {
    request = cmd;
  } else if (cmd[0] == "config" && cmd.size() == 4 && cmd[1] == "set") {
    request = cmd;
  } else if (cmd[0] == "cluster" && cmd.size() == 2 && cmd[1] == "status") {
    request = {"CLUSTER", "NODES"};
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
