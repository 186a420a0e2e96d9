// Scenario script parsing, rendering and the command interpreter.
#include "tests/unit/raft/scenario.h"

#include <map>
#include <sstream>

namespace tally::raft::testing {

namespace {

std::vector<std::string> split_words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

Result<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 19) return Status::invalid("bad number: " + s);
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Status::invalid("bad number: " + s);
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// "(1,2,3)" or "()" -> ids.
Result<std::vector<NodeId>> parse_id_list(const std::string& s) {
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') return Status::invalid("bad list: " + s);
  std::vector<NodeId> out;
  std::string body = s.substr(1, s.size() - 2);
  std::string cur;
  for (size_t i = 0; i <= body.size(); ++i) {
    if (i == body.size() || body[i] == ',') {
      if (!cur.empty()) {
        auto v = parse_u64(cur);
        if (!v.is_ok()) return v.status();
        out.push_back(v.value());
      }
      cur.clear();
    } else {
      cur += body[i];
    }
  }
  return out;
}

Result<bool> parse_bool(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  return Status::invalid("bad bool: " + s);
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> named;
};

Args parse_args(const std::vector<std::string>& words) {
  Args a;
  for (size_t i = 1; i < words.size(); ++i) {
    const auto eq = words[i].find('=');
    if (eq != std::string::npos && eq > 0) {
      a.named[words[i].substr(0, eq)] = words[i].substr(eq + 1);
    } else {
      a.positional.push_back(words[i]);
    }
  }
  return a;
}

Status apply_options(const Args& a, Config* c) {
  for (const auto& [k, v] : a.named) {
    if (k == "voters" || k == "learners") continue;
    if (k == "pre-vote" || k == "check-quorum" || k == "lease") {
      auto b = parse_bool(v);
      if (!b.is_ok()) return b.status();
      if (k == "pre-vote") c->pre_vote = b.value();
      if (k == "check-quorum") c->check_quorum = b.value();
      if (k == "lease") c->lease_read.enabled = b.value();
      continue;
    }
    if (k == "bugs") {
      std::string body = v.size() >= 2 ? v.substr(1, v.size() - 2) : "";
      std::istringstream in(body);
      std::string name;
      while (std::getline(in, name, ',')) {
        if (name == "count-prior-term-replicas") c->bugs.count_prior_term_replicas = true;
        else if (name == "vote-without-persist") c->bugs.vote_without_persist = true;
        else if (name == "apply-before-commit") c->bugs.apply_before_commit = true;
        else if (name == "accept-mismatched-prev-term") c->bugs.accept_mismatched_prev_term = true;
        else return Status::invalid("unknown bug: " + name);
      }
      continue;
    }
    auto n = parse_u64(v);
    if (!n.is_ok()) return n.status();
    if (k == "max-inflight") c->max_inflight_msgs = static_cast<uint32_t>(n.value());
    else if (k == "max-inflight-bytes") c->max_inflight_bytes = n.value();
    else if (k == "max-inflight-entries") c->max_inflight_entries = n.value();
    else if (k == "max-msg-bytes") c->max_size_per_msg = n.value();
    else if (k == "max-uncommitted") c->max_uncommitted_entries = n.value();
    else if (k == "election") c->election_tick = static_cast<uint32_t>(n.value());
    else if (k == "heartbeat") c->heartbeat_tick = static_cast<uint32_t>(n.value());
    else if (k == "drift-ms") c->lease_read.clock_drift_max_ms = n.value();
    else if (k == "tick-ms") c->lease_read.tick_interval_ms = n.value();
    else return Status::invalid("unknown option: " + k);
  }
  return Status::ok();
}

std::string error_line(const Status& s) { return "error: " + s.message() + "\n"; }

}  // namespace

Result<std::vector<ScenarioBlock>> parse_scenario(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) lines.push_back(l);
  std::vector<ScenarioBlock> blocks;
  std::vector<std::string> comments;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty()) {
      ++i;
      continue;
    }
    if (line[0] == '#') {
      comments.push_back(line);
      ++i;
      continue;
    }
    if (blocks.size() >= kScenarioCommandsMax) return Status::exhausted("too many commands");
    ScenarioBlock b;
    b.comments = std::move(comments);
    comments.clear();
    b.command = line;
    b.line = i + 1;
    ++i;
    if (i >= lines.size() || lines[i] != "----") {
      return Status::invalid("line " + std::to_string(b.line) + ": expected ---- after the command");
    }
    ++i;
    while (i < lines.size() && !lines[i].empty()) b.expected += lines[i++] + "\n";
    blocks.push_back(std::move(b));
  }
  return blocks;
}

std::string render_scenario(const std::vector<ScenarioBlock>& blocks) {
  std::string out;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i) out += "\n";
    for (const std::string& c : blocks[i].comments) out += c + "\n";
    out += blocks[i].command + "\n----\n" + blocks[i].expected;
  }
  return out;
}

std::string ScenarioRunner::run(const std::string& command) {
  const std::vector<std::string> words = split_words(command);
  if (words.empty()) return error_line(Status::invalid("empty command"));
  const std::string& cmd = words[0];
  const Args a = parse_args(words);
  auto id_at = [&](size_t k) -> Result<NodeId> {
    if (k >= a.positional.size()) return Status::invalid("missing node id");
    auto v = parse_u64(a.positional[k]);
    if (!v.is_ok()) return v.status();
    if (!cluster_.has(v.value())) return Status::not_found("no node " + a.positional[k]);
    return v.value();
  };
  auto ids_from = [&](size_t k) -> Result<std::set<NodeId>> {
    std::set<NodeId> out;
    for (size_t j = k; j < a.positional.size(); ++j) {
      auto id = id_at(j);
      if (!id.is_ok()) return id.status();
      out.insert(id.value());
    }
    return out;
  };
  std::string out;

  if (cmd == "add-nodes" || cmd == "add-node") {
    Config c;
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    Status st = apply_options(a, &c);
    if (!st.is_ok()) return error_line(st);
    std::vector<NodeId> ids;
    std::vector<NodeId> voters;
    std::vector<NodeId> learners;
    if (cmd == "add-nodes") {
      auto n = a.positional.empty() ? Result<uint64_t>(Status::invalid("missing count")) : parse_u64(a.positional[0]);
      if (!n.is_ok()) return error_line(n.status());
      NodeId next = cluster_.ids().empty() ? 1 : cluster_.ids().back() + 1;
      for (uint64_t k = 0; k < n.value(); ++k) ids.push_back(next++);
      if (a.named.count("voters")) {
        auto v = parse_id_list(a.named.at("voters"));
        if (!v.is_ok()) return error_line(v.status());
        voters = v.value();
      } else {
        voters = ids;
      }
      if (a.named.count("learners")) {
        auto v = parse_id_list(a.named.at("learners"));
        if (!v.is_ok()) return error_line(v.status());
        learners = v.value();
      }
    } else {
      // A brand-new node that knows no membership: it joins when the leader's log reaches it.
      auto v = a.positional.empty() ? Result<uint64_t>(Status::invalid("missing id")) : parse_u64(a.positional[0]);
      if (!v.is_ok()) return error_line(v.status());
      if (cluster_.has(v.value())) return error_line(Status(Code::kAlreadyExists, "node exists"));
      ids.push_back(v.value());
    }
    cluster_.add_nodes(ids, voters, learners, c);
    return "";
  }
  if (cmd == "campaign") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    Status st = cluster_.raw(id.value()).campaign();
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "tick") {
    if (a.positional.empty()) return error_line(Status::invalid("missing node id"));
    std::vector<NodeId> ids;
    if (a.positional[0] == "all") {
      for (NodeId n : cluster_.ids()) {
        if (cluster_.node(n).raw) ids.push_back(n);
      }
    } else {
      auto id = id_at(0);
      if (!id.is_ok()) return error_line(id.status());
      ids.push_back(id.value());
    }
    uint64_t times = 1;
    if (a.positional.size() > 1) {
      auto t = parse_u64(a.positional[1]);
      if (!t.is_ok()) return error_line(t.status());
      times = t.value();
    }
    if (times > kScenarioTicksMax) return error_line(Status::invalid("too many ticks"));
    for (uint64_t t = 0; t < times; ++t) {
      for (NodeId n : ids) cluster_.raw(n).tick();
    }
    return "";
  }
  if (cmd == "run") {
    // run N: N rounds of (tick every live node, stabilize) printing only changes of role, term
    // or leader, so long stretches of heartbeats stay readable.
    if (a.positional.size() != 1) return error_line(Status::invalid("usage: run ROUNDS"));
    auto rounds = parse_u64(a.positional[0]);
    if (!rounds.is_ok()) return error_line(rounds.status());
    if (rounds.value() > kScenarioTicksMax) return error_line(Status::invalid("too many rounds"));
    auto signature = [&](NodeId n) -> std::string {
      if (!cluster_.node(n).raw) return "crashed";
      RawNode& r = cluster_.raw(n);
      return std::string(role_name(r.role())) + " term=" + std::to_string(r.term()) +
             " leader=" + std::to_string(r.leader());
    };
    std::map<NodeId, std::string> last;
    for (NodeId n : cluster_.ids()) last[n] = signature(n);
    for (uint64_t r = 1; r <= rounds.value(); ++r) {
      for (NodeId n : cluster_.ids()) {
        if (cluster_.node(n).raw) cluster_.raw(n).tick();
      }
      cluster_.settle();
      for (NodeId n : cluster_.ids()) {
        const std::string sig = signature(n);
        if (sig != last[n]) out += "round " + std::to_string(r) + ": " + std::to_string(n) + " " + sig + "\n";
        last[n] = sig;
      }
    }
    return out;
  }
  if (cmd == "set-time") {
    // set-time ID|all MS: the monotonic clock used for lease reads.
    if (a.positional.size() != 2) return error_line(Status::invalid("usage: set-time ID|all MS"));
    auto ms = parse_u64(a.positional[1]);
    if (!ms.is_ok()) return error_line(ms.status());
    for (NodeId n : cluster_.ids()) {
      if (a.positional[0] == "all" || a.positional[0] == std::to_string(n)) cluster_.set_time_ms(n, ms.value());
    }
    return "";
  }
  if (cmd == "process-ready") {
    auto ids = ids_from(0);
    if (!ids.is_ok()) return error_line(ids.status());
    for (NodeId n : ids.value()) cluster_.process_ready(n, &out);
    return out;
  }
  if (cmd == "deliver-msgs") {
    auto ids = ids_from(0);
    if (!ids.is_ok()) return error_line(ids.status());
    std::set<NodeId> drop;
    if (a.named.count("drop")) {
      auto d = parse_id_list(a.named.at("drop"));
      if (!d.is_ok()) return error_line(d.status());
      drop.insert(d->begin(), d->end());
    }
    cluster_.deliver(ids.value(), drop, &out);
    return out;
  }
  if (cmd == "stabilize") {
    auto ids = ids_from(0);
    if (!ids.is_ok()) return error_line(ids.status());
    cluster_.stabilize(ids.value(), &out);
    return out;
  }
  if (cmd == "partition" || cmd == "cut") {
    // partition 1 2 | 3 4 5        cut 2 3 -> 1  (messages from 2 and 3 to 1 are lost)
    std::vector<std::set<NodeId>> groups(1);
    const std::string sep = cmd == "partition" ? "|" : "->";
    for (size_t k = 1; k < words.size(); ++k) {
      if (words[k] == sep) {
        groups.emplace_back();
        continue;
      }
      auto v = parse_u64(words[k]);
      if (!v.is_ok()) return error_line(v.status());
      groups.back().insert(v.value());
    }
    if (cmd == "partition") {
      cluster_.partition(groups);
    } else {
      if (groups.size() != 2) return error_line(Status::invalid("usage: cut FROM... -> TO..."));
      cluster_.cut(groups[0], groups[1]);
    }
    return "";
  }
  if (cmd == "heal") {
    cluster_.heal();
    return "";
  }
  if (cmd == "propose") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    std::vector<std::string> batch(a.positional.begin() + 1, a.positional.end());
    Status st = cluster_.raw(id.value()).propose(batch);
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "propose-conf-change") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    if (a.positional.size() != 3) return error_line(Status::invalid("usage: propose-conf-change ID TYPE NODE"));
    ConfChange cc;
    const std::string& t = a.positional[1];
    if (t == "add-voter") cc.type = ConfChangeType::kAddVoter;
    else if (t == "add-learner") cc.type = ConfChangeType::kAddLearner;
    else if (t == "remove") cc.type = ConfChangeType::kRemoveNode;
    else return error_line(Status::invalid("unknown conf change: " + t));
    auto node = parse_u64(a.positional[2]);
    if (!node.is_ok()) return error_line(node.status());
    cc.node = node.value();
    Status st = cluster_.raw(id.value()).propose_conf_change(cc);
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "read-index") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    if (a.positional.size() != 2) return error_line(Status::invalid("usage: read-index ID CONTEXT"));
    Status st = cluster_.raw(id.value()).read_index(a.positional[1]);
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "transfer-leader") {
    auto from = id_at(0);
    auto to = id_at(1);
    if (!from.is_ok()) return error_line(from.status());
    if (!to.is_ok()) return error_line(to.status());
    Status st = cluster_.raw(from.value()).transfer_leader(to.value());
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "status" || cmd == "log") {
    auto ids = ids_from(0);
    if (!ids.is_ok()) return error_line(ids.status());
    std::set<NodeId> which = ids.value();
    if (which.empty()) {
      for (NodeId n : cluster_.ids()) which.insert(n);
    }
    for (NodeId n : which) {
      if (cmd == "status") {
        out += cluster_.status_line(n);
      } else {
        if (which.size() > 1) out += std::to_string(n) + ":\n";
        out += cluster_.log_lines(n);
      }
    }
    return out;
  }
  if (cmd == "crash" || cmd == "restart") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    if (cmd == "crash") {
      if (!cluster_.node(id.value()).raw) return error_line(Status::invalid("already crashed"));
      cluster_.crash(id.value());
      return "";
    }
    if (cluster_.node(id.value()).raw) return error_line(Status::invalid("not crashed"));
    Status st = cluster_.restart(id.value());
    return st.is_ok() ? "" : error_line(st);
  }
  if (cmd == "compact") {
    auto id = id_at(0);
    if (!id.is_ok()) return error_line(id.status());
    if (a.positional.size() != 2) return error_line(Status::invalid("usage: compact ID INDEX"));
    auto i = parse_u64(a.positional[1]);
    if (!i.is_ok()) return error_line(i.status());
    Status st = cluster_.compact(id.value(), i.value());
    return st.is_ok() ? "" : error_line(st);
  }
  return error_line(Status::invalid("unknown command: " + cmd));
}

}  // namespace tally::raft::testing
