#include "host/cluster/membership.h"

#include <algorithm>
#include <charconv>
#include <map>
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

// Items of several groups interleaved in proportion to the groups' sizes: item k of a group of size s
// sits at (k + 1/2) / s along the ring; ties go to the group named first.
std::vector<uint64_t> interleave(const std::map<std::string, std::vector<uint64_t>>& groups) {
  struct Slot {
    double at;
    size_t group;
    uint64_t item;
  };
  std::vector<Slot> slots;
  size_t g = 0;
  for (const auto& [name, items] : groups) {
    for (size_t k = 0; k < items.size(); ++k) {
      slots.push_back(Slot{(static_cast<double>(k) + 0.5) / static_cast<double>(items.size()), g, items[k]});
    }
    ++g;
  }
  std::stable_sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) {
    return a.at != b.at ? a.at < b.at : a.group < b.group;
  });
  std::vector<uint64_t> out;
  for (const Slot& s : slots) out.push_back(s.item);
  return out;
}

}  // namespace

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 64) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::vector<uint64_t> Membership::placement_ring() const {
  std::vector<uint64_t> ring;
  const bool labelled = std::any_of(nodes.begin(), nodes.end(), [](const MemberNode& n) {
    return !n.zone.empty() || !n.rack.empty();
  });
  if (!labelled) {
    for (const MemberNode& n : nodes) ring.push_back(n.number);
    return ring;
  }
  // zone -> rack -> node numbers (in formation order).
  std::map<std::string, std::map<std::string, std::vector<uint64_t>>> zones;
  for (const MemberNode& n : nodes) zones[n.zone][n.rack].push_back(n.number);
  std::map<std::string, std::vector<uint64_t>> by_zone;
  for (const auto& [zone, racks] : zones) by_zone[zone] = interleave(racks);
  return interleave(by_zone);
}

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
    if ((!n.zone.empty() && !valid_label(n.zone)) || (!n.rack.empty() && !valid_label(n.rack))) {
      return Status::invalid("node " + std::to_string(n.number) + " has a bad zone or rack label");
    }
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
  const std::vector<uint64_t> ring = placement_ring();
  for (uint32_t k = 0; k < replicas && k < n; ++k) out.push_back(ring[(partition + k) % n]);
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
         std::to_string(n.peer_port);
    if (!n.zone.empty()) t += " zone=" + n.zone;
    if (!n.rack.empty()) t += " rack=" + n.rack;
    t += "\n";
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
      if (w.size() < 7 || w.size() > 9 || !parse_u64(w[2], n.number) || !parse_u64(w[5], port) ||
          !parse_u64(w[6], peer) || port > 65535 || peer > 65535) {
        return bad();
      }
      for (size_t i = 7; i < w.size(); ++i) {
        if (w[i].starts_with("zone=") && n.zone.empty()) {
          n.zone = std::string(w[i].substr(5));
        } else if (w[i].starts_with("rack=") && n.rack.empty()) {
          n.rack = std::string(w[i].substr(5));
        } else {
          return bad();
        }
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
