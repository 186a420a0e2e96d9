#include "tests/sim/raft_checker.h"

#include <algorithm>
#include <string_view>

namespace tally::sim {

namespace {
uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}
uint64_t hash_bytes(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}
std::string where(uint32_t group, raft::NodeId node) {
  return "group " + std::to_string(group) + " node " + std::to_string(node);
}
}  // namespace

uint64_t entry_hash(const raft::Entry& e) {
  uint64_t h = mix(mix(0xcbf29ce484222325ULL, e.term), e.index);
  h = mix(h, static_cast<uint64_t>(e.type));
  return hash_bytes(h, e.data);
}

RaftChecker::RaftChecker(uint32_t groups) : groups_(groups) { TALLY_ASSERT(groups > 0); }

bool RaftChecker::fail(const char* kind, std::string detail) {
  if (violation_.empty()) {
    kind_ = kind;
    violation_ = std::move(detail);
  }
  return false;
}

raft::Term RaftChecker::max_leader_term(uint32_t group) const {
  TALLY_ASSERT(group < groups_.size());
  const auto& terms = groups_[group].leader_of_term;
  return terms.empty() ? 0 : terms.rbegin()->first;
}

void RaftChecker::forget(uint32_t group, raft::NodeId node) {
  TALLY_ASSERT(group < groups_.size());
  groups_[group].leading_term[node] = 0;
}

bool RaftChecker::observe_role(uint32_t group, raft::NodeId node, raft::Role role, raft::Term term,
                               const raft::Storage& log) {
  TALLY_ASSERT(group < groups_.size());
  Group& g = groups_[group];
  raft::Term& leading = g.leading_term[node];
  if (role != raft::Role::kLeader) {
    leading = 0;
    return true;
  }
  // Election safety: at most one leader per term.
  auto [it, inserted] = g.leader_of_term.emplace(term, node);
  if (!inserted && it->second != node) {
    return fail("election safety", "term " + std::to_string(term) + " of group " + std::to_string(group) +
                                       " has two leaders: node " + std::to_string(it->second) + " and node " +
                                       std::to_string(node));
  }
  if (leading == term) return true;
  leading = term;
  // Leader completeness, checked when a replica becomes leader: every entry committed by a
  // leader of an earlier term is in its log.
  for (const auto& [index, c] : g.committed) {
    if (c.commit_term >= term) continue;
    if (index < log.first_index()) continue;  // inside its snapshot: committed state it holds
    Result<raft::Term> t = log.term(index);
    if (!t.is_ok() || *t != c.entry_term) {
      return fail("leader completeness",
                  where(group, node) + " became leader of term " + std::to_string(term) + " without entry " +
                      std::to_string(index) + " (term " + std::to_string(c.entry_term) + ", committed in term " +
                      std::to_string(c.commit_term) + "); its log has " +
                      (t.is_ok() ? "term " + std::to_string(*t) : std::string("nothing")) + " there");
    }
  }
  return true;
}

bool RaftChecker::observe_ready(uint32_t group, raft::NodeId node, raft::Role role, raft::Term term,
                                const raft::Ready& ready, const raft::Storage& log_before) {
  TALLY_ASSERT(group < groups_.size());
  Group& g = groups_[group];
  const bool was_leading = g.leading_term[node] == term && term != 0;
  // Leader append-only: a leader never overwrites or deletes entries of its own log.
  if (was_leading && role == raft::Role::kLeader && !ready.entries.empty() &&
      ready.entries.front().index <= log_before.last_index()) {
    return fail("leader append-only", where(group, node) + " (leader of term " + std::to_string(term) +
                                          ") rewrites its log from index " +
                                          std::to_string(ready.entries.front().index) + " while its last index is " +
                                          std::to_string(log_before.last_index()));
  }
  // Record who committed what first: only a leader advances a commit index on its own.
  if (role == raft::Role::kLeader && ready.hard_state && ready.hard_state->commit > g.max_commit) {
    TALLY_ASSERT(ready.hard_state->commit < kIndexMax);
    for (raft::Index i = g.max_commit + 1; i <= ready.hard_state->commit; ++i) {
      raft::Term t = 0;
      for (const raft::Entry& e : ready.entries) {
        if (e.index == i) t = e.term;
      }
      if (t == 0) {
        Result<raft::Term> stored = log_before.term(i);
        if (!stored.is_ok()) continue;  // compacted or not yet stored: nothing to compare later
        t = *stored;
      }
      g.committed.emplace(i, Committed{t, term});
    }
    Result<raft::Term> top = log_before.term(ready.hard_state->commit);
    for (const raft::Entry& e : ready.entries) {
      if (e.index == ready.hard_state->commit) top = e.term;
    }
    if (top.is_ok() && *top != term) ++prior_term_commits_;
    g.max_commit = ready.hard_state->commit;
  }
  return true;
}

bool RaftChecker::check_one_conf_change(uint32_t group, raft::NodeId leader, const raft::Ready& ready,
                                       raft::Index applied, const raft::Storage& log) {
  TALLY_ASSERT(group < groups_.size());
  raft::Index newest_conf = 0;  // the conf change before the one being checked
  auto unapplied_change = [&](raft::Index at) {
    return newest_conf > applied && newest_conf < at;
  };
  // Earlier conf changes still in the log and not applied.
  const raft::Index first = std::max(applied + 1, log.first_index());
  const raft::Index stored_end = ready.entries.empty() ? log.last_index() + 1
                                                       : std::min(log.last_index() + 1, ready.entries.front().index);
  if (first < stored_end) {
    Result<std::vector<raft::Entry>> ents = log.entries(first, stored_end, UINT64_MAX);
    if (ents.is_ok()) {
      for (const raft::Entry& e : *ents) {
        if (e.type == raft::EntryType::kConfChange) newest_conf = e.index;
      }
    }
  }
  for (const raft::Entry& e : ready.entries) {
    if (e.type != raft::EntryType::kConfChange) continue;
    if (unapplied_change(e.index)) {
      return fail("one membership change at a time",
                  where(group, leader) + " appended a membership change at index " + std::to_string(e.index) +
                      " while the one at index " + std::to_string(newest_conf) + " was not applied (applied " +
                      std::to_string(applied) + ")");
    }
    newest_conf = e.index;
  }
  return true;
}

bool RaftChecker::observe_apply(uint32_t group, raft::NodeId node, const raft::Entry& entry) {
  TALLY_ASSERT(group < groups_.size());
  TALLY_ASSERT(entry.index > 0 && entry.index < kIndexMax);
  Group& g = groups_[group];
  // State machine safety: every replica applies the same entry at each index.
  const uint64_t h = entry_hash(entry);
  auto [it, inserted] = g.applied_hash.emplace(entry.index, h);
  if (!inserted && it->second != h) {
    return fail("state machine safety", where(group, node) + " applied a different entry at index " +
                                            std::to_string(entry.index) + " (term " + std::to_string(entry.term) +
                                            ") than another replica did");
  }
  auto c = g.committed.find(entry.index);
  if (c != g.committed.end() && c->second.entry_term != entry.term) {
    return fail("state machine safety", where(group, node) + " applied term " + std::to_string(entry.term) +
                                            " at index " + std::to_string(entry.index) + " but the leader committed term " +
                                            std::to_string(c->second.entry_term));
  }
  return true;
}

bool RaftChecker::check_commit_durable(uint32_t group, raft::NodeId leader, raft::Index index,
                                       const std::vector<std::pair<raft::NodeId, const raft::Storage*>>& logs) {
  TALLY_ASSERT(group < groups_.size());
  TALLY_ASSERT(!logs.empty());
  const raft::Storage* leader_log = nullptr;
  for (const auto& [id, log] : logs) {
    if (id == leader) leader_log = log;
  }
  if (leader_log == nullptr) return true;  // a leader outside its own configuration is stepping down
  Result<raft::Term> committed_term = leader_log->term(index);
  if (!committed_term.is_ok()) return true;
  // Raft's up-to-date order: last term, then last index.
  auto last = [](const raft::Storage* s) {
    Result<raft::Term> t = s->term(s->last_index());
    return std::make_pair(t.is_ok() ? *t : 0, s->last_index());
  };
  const size_t quorum = logs.size() / 2 + 1;
  for (const auto& [x, xlog] : logs) {
    if (xlog == nullptr) continue;
    if (index < xlog->first_index()) continue;  // covered by its snapshot
    Result<raft::Term> t = xlog->term(index);
    if (t.is_ok() && *t == *committed_term) continue;
    size_t would_vote = 0;
    for (const auto& [y, ylog] : logs) would_vote += ylog != nullptr && last(ylog) <= last(xlog) ? 1 : 0;
    if (would_vote >= quorum) {
      return fail("leader completeness",
                  where(group, leader) + " committed index " + std::to_string(index) + " (term " +
                      std::to_string(*committed_term) + ") although node " + std::to_string(x) +
                      ", which lacks it, holds a log as up-to-date as " + std::to_string(would_vote) + " of " +
                      std::to_string(logs.size()) + " voters and could be elected");
    }
  }
  return true;
}

bool RaftChecker::check_log_matching(uint32_t group,
                                     const std::vector<std::pair<raft::NodeId, const raft::Storage*>>& logs) {
  TALLY_ASSERT(group < groups_.size());
  // Chain hash of each log prefix: two logs agree up to i iff their chain hashes at i agree,
  // so comparing chain hashes at equal (index, term) checks the whole prefix at once.
  std::map<std::pair<raft::Index, raft::Term>, std::pair<uint64_t, raft::NodeId>> seen;
  for (const auto& [node, log] : logs) {
    const raft::Index first = log->first_index(), last = log->last_index();
    TALLY_ASSERT(last < kIndexMax);
    if (first > 1 || last == 0) continue;  // compacted logs are compared from their snapshot on
    Result<std::vector<raft::Entry>> ents = log->entries(first, last + 1, UINT64_MAX);
    TALLY_ASSERT(ents.is_ok());
    uint64_t chain = 0;
    for (const raft::Entry& e : *ents) {
      chain = mix(chain, entry_hash(e));
      auto [it, inserted] = seen.emplace(std::make_pair(e.index, e.term), std::make_pair(chain, node));
      if (!inserted && it->second.first != chain) {
        return fail("log matching", "group " + std::to_string(group) + ": nodes " + std::to_string(it->second.second) +
                                        " and " + std::to_string(node) + " both hold index " + std::to_string(e.index) +
                                        " term " + std::to_string(e.term) + " but their logs differ before it");
      }
    }
  }
  return true;
}

}  // namespace tally::sim
