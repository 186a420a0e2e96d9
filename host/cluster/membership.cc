#include "host/cluster/membership.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "host/cluster/slot_map.h"

namespace tally::cluster {

namespace {

constexpr uint32_t kFormat = 1;

bool parse_u64(std::string_view v, uint64_t& out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size() && !v.empty();
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

Status Membership::validate() const {
  if (nodes.empty()) return Status::invalid("a cluster needs at least one node");
  if (nodes.size() > kMembersMax) return Status::invalid("a cluster has at most " + std::to_string(kMembersMax) + " nodes");
  std::set<std::string> ids;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const MemberNode& n = nodes[i];
    if (n.number != i + 1) return Status::invalid("nodes must be numbered 1.." + std::to_string(nodes.size()) + " in order");
    if (!valid_node_id(n.id)) return Status::invalid("node " + std::to_string(n.number) + " has a bad id '" + n.id + "'");
    if (!ids.insert(n.id).second) return Status::invalid("node id " + n.id + " appears twice");
    if (n.host.empty() || n.host.find(' ') != std::string::npos) {
      return Status::invalid("node " + std::to_string(n.number) + " has a bad host '" + n.host + "'");
    }
    if (n.port == 0 || n.peer_port == 0) return Status::invalid("node " + std::to_string(n.number) + " needs a port and a peer port");
  }
  if (node(self) == nullptr) return Status::invalid("this node (" + std::to_string(self) + ") is not among the nodes");
  if (replicas == 0 || replicas > nodes.size() || replicas > kReplicasMax) {
    return Status::invalid("replicas must be between 1 and the node count (" + std::to_string(nodes.size()) +
                           "), at most " + std::to_string(kReplicasMax));
  }
  if (epoch == 0) return Status::invalid("epoch starts at 1");
  return Status::ok();
}

std::vector<uint64_t> Membership::replicas_of(uint32_t partition) const {
  std::vector<uint64_t> out;
  const uint64_t n = nodes.size();
  for (uint32_t k = 0; k < replicas && k < n; ++k) out.push_back((partition + k) % n + 1);
  std::sort(out.begin(), out.end());
  return out;
}

bool Membership::holds(uint32_t partition) const {
  const auto r = replicas_of(partition);
  return std::find(r.begin(), r.end(), self) != r.end();
}

std::string Membership::serialize() const {
  std::string t = "format = " + std::to_string(kFormat) + "\n";
  t += "epoch = " + std::to_string(epoch) + "\n";
  t += "replicas = " + std::to_string(replicas) + "\n";
  t += "self = " + std::to_string(self) + "\n";
  for (const MemberNode& n : nodes) {
    t += "node = " + std::to_string(n.number) + " " + n.id + " " + n.host + " " + std::to_string(n.port) + " " +
         std::to_string(n.peer_port) + "\n";
  }
  return t;
}

Result<Membership> Membership::parse(std::string_view text) {
  Membership m;
  bool format_seen = false;
  size_t at = 0;
  int line_no = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const auto w = words(line);
    auto bad = [&] { return Status::corruption("CLUSTER line " + std::to_string(line_no) + ": '" + std::string(line) + "'"); };
    if (w.size() < 3 || w[1] != "=") return bad();
    uint64_t v = 0;
    if (w[0] == "node") {
      MemberNode n;
      uint64_t port = 0, peer = 0;
      if (w.size() != 7 || !parse_u64(w[2], n.number) || !parse_u64(w[5], port) || !parse_u64(w[6], peer) ||
          port > 65535 || peer > 65535) {
        return bad();
      }
      n.id = std::string(w[3]);
      n.host = std::string(w[4]);
      n.port = static_cast<uint16_t>(port);
      n.peer_port = static_cast<uint16_t>(peer);
      m.nodes.push_back(std::move(n));
      continue;
    }
    if (w.size() != 3 || !parse_u64(w[2], v)) return bad();
    if (w[0] == "format") {
      if (v != kFormat) return Status::corruption("CLUSTER has format " + std::to_string(v) + "; this tallyd reads 1");
      format_seen = true;
    } else if (w[0] == "epoch") {
      m.epoch = v;
    } else if (w[0] == "replicas") {
      if (v > kMembersMax) return bad();
      m.replicas = static_cast<uint32_t>(v);
    } else if (w[0] == "self") {
      m.self = v;
    } else {
      return bad();
    }
  }
  if (!format_seen) return Status::corruption("CLUSTER has no format line");
  TALLY_RETURN_IF_ERROR(m.validate());
  return m;
}

}  // namespace tally::cluster
