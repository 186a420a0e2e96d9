#include "tests/sim/linearizability.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_set>
#include <vector>

namespace tally::sim {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable: return "linearizable";
    case Verdict::kNotLinearizable: return "NOT linearizable";
    case Verdict::kTooBig: return "unknown/too big";
  }
  TALLY_UNREACHABLE();
}

namespace {

// The register's state; absence is a value no client can write through the checker's model.
constexpr int64_t kAbsent = std::numeric_limits<int64_t>::min();
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

int64_t encode(const std::optional<int64_t>& v) { return v ? *v : kAbsent; }

// Applies `op` to `state`; false when the op's recorded result contradicts the state.
bool step(int64_t state, const Operation& op, int64_t& next) {
  const bool known = op.outcome == Outcome::kOk;
  switch (op.op) {
    case OpKind::kRead:
      next = state;
      return !known || encode(op.result) == state;
    case OpKind::kWrite:
      next = *op.arg;
      return true;
    case OpKind::kCas: {
      const bool swap = state == encode(op.expect);
      next = swap ? *op.arg : state;
      return !known || (op.result && *op.result == (swap ? 1 : 0));
    }
    case OpKind::kIncr: {
      const int64_t base = state == kAbsent ? 0 : state;
      next = static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(*op.arg));
      return !known || encode(op.result) == next;
    }
  }
  TALLY_UNREACHABLE();
}

// A node of the doubly linked event list the search lifts operations out of.
struct Event {
  uint32_t op = 0;
  bool is_call = false;
  int32_t match = -1;  // call: its return event
  int32_t prev = -1;
  int32_t next = -1;
};

struct MemoKey {
  std::vector<uint64_t> bits;
  int64_t state;
  bool operator==(const MemoKey&) const = default;
};
struct MemoHash {
  size_t operator()(const MemoKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.state) * 0x9e3779b97f4a7c15ULL;
    for (uint64_t w : k.bits) h = (h ^ w) * 0xff51afd7ed558ccdULL + (h >> 29);
    return static_cast<size_t>(h);
  }
};

}  // namespace

CheckResult check_key(std::span<const Operation> all_ops, const CheckOptions& options) {
  TALLY_ASSERT(options.steps_max > 0);
  CheckResult result;
  result.keys = 1;
  if (all_ops.empty()) return result;
  result.key = all_ops.front().key;
  // Failed operations took no effect, unknown reads constrain nothing: drop both.
  std::vector<const Operation*> ops;
  for (const Operation& op : all_ops) {
    TALLY_ASSERT(op.key == result.key);
    if (op.outcome == Outcome::kFail) continue;
    if (op.outcome == Outcome::kUnknown && op.op == OpKind::kRead) continue;
    ops.push_back(&op);
  }
  const uint32_t n = static_cast<uint32_t>(ops.size());
  result.ops = n;
  uint32_t required = 0;
  for (const Operation* op : ops) required += op->outcome == Outcome::kOk ? 1 : 0;

  // Events sorted by time; calls sort before returns at the same instant, which treats
  // touching operations as concurrent (the permissive reading). Unknowns return "never".
  struct Timed {
    uint64_t t;
    bool is_return;
    uint32_t op;
  };
  std::vector<Timed> timed;
  timed.reserve(2 * n);
  for (uint32_t i = 0; i < n; ++i) {
    timed.push_back({ops[i]->call_ns, false, i});
    timed.push_back({ops[i]->outcome == Outcome::kUnknown ? kNever : ops[i]->return_ns, true, i});
  }
  std::sort(timed.begin(), timed.end(), [](const Timed& a, const Timed& b) {
    if (a.t != b.t) return a.t < b.t;
    if (a.is_return != b.is_return) return !a.is_return;
    return a.op < b.op;
  });
  // events[0] is the head sentinel.
  std::vector<Event> events(timed.size() + 1);
  std::vector<int32_t> return_of(n, -1);
  for (size_t i = 0; i < timed.size(); ++i) {
    Event& e = events[i + 1];
    e.op = timed[i].op;
    e.is_call = !timed[i].is_return;
    e.prev = static_cast<int32_t>(i);
    e.next = i + 1 < timed.size() ? static_cast<int32_t>(i + 2) : -1;
    if (timed[i].is_return) return_of[timed[i].op] = static_cast<int32_t>(i + 1);
  }
  events[0].next = timed.empty() ? -1 : 1;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].is_call) events[i].match = return_of[events[i].op];
  }
  auto unlink = [&](int32_t i) {
    Event& e = events[i];
    events[e.prev].next = e.next;
    if (e.next >= 0) events[e.next].prev = e.prev;
  };
  auto relink = [&](int32_t i) {
    Event& e = events[i];
    events[e.prev].next = i;
    if (e.next >= 0) events[e.next].prev = i;
  };
  // Lifting removes an operation's call and return; unlifting restores them in reverse order.
  auto lift = [&](int32_t call) {
    unlink(call);
    unlink(events[call].match);
  };
  auto unlift = [&](int32_t call) {
    relink(events[call].match);
    relink(call);
  };

  std::vector<uint64_t> bits((n + 63) / 64, 0);
  std::unordered_set<MemoKey, MemoHash> memo;
  struct Frame {
    int32_t call;
    int64_t state;
  };
  std::vector<Frame> stack;
  stack.reserve(n);
  int64_t state = kAbsent;
  uint32_t linearized_required = 0;
  uint32_t deepest = 0;
  int32_t entry = events[0].next;
  while (true) {
    if (linearized_required == required) return result;
    if (++result.steps > options.steps_max || memo.size() > options.memo_entries_max) {
      result.verdict = Verdict::kTooBig;
      result.detail = "search budget exhausted after " + std::to_string(result.steps) + " steps on " +
                      std::to_string(n) + " operations";
      return result;
    }
    if (entry >= 0 && events[entry].is_call) {
      const uint32_t op = events[entry].op;
      int64_t next_state = 0;
      if (step(state, *ops[op], next_state)) {
        bits[op / 64] |= 1ULL << (op % 64);
        if (memo.insert(MemoKey{bits, next_state}).second) {
          stack.push_back({entry, state});
          state = next_state;
          linearized_required += ops[op]->outcome == Outcome::kOk ? 1 : 0;
          deepest = std::max(deepest, static_cast<uint32_t>(stack.size()));
          lift(entry);
          entry = events[0].next;
          continue;
        }
        bits[op / 64] &= ~(1ULL << (op % 64));
      }
      entry = events[entry].next;
      continue;
    }
    // A return (or the end): the pending operations before it cannot go first; backtrack.
    if (stack.empty()) {
      result.verdict = Verdict::kNotLinearizable;
      const Operation* stuck = entry >= 0 ? ops[events[entry].op] : nullptr;
      result.detail = "key " + result.key + ": no linearization of " + std::to_string(n) +
                      " operations (deepest prefix " + std::to_string(deepest) + ")";
      if (stuck) result.detail += "; cannot place " + to_json_line(*stuck);
      return result;
    }
    const Frame top = stack.back();
    stack.pop_back();
    const uint32_t op = events[top.call].op;
    TALLY_ASSERT((bits[op / 64] >> (op % 64)) & 1);
    bits[op / 64] &= ~(1ULL << (op % 64));
    linearized_required -= ops[op]->outcome == Outcome::kOk ? 1 : 0;
    state = top.state;
    unlift(top.call);
    entry = events[top.call].next;
  }
}

CheckResult check_history(std::span<const Operation> ops, const CheckOptions& options) {
  // Ordered by key so the verdict and the reported key do not depend on hashing.
  std::map<std::string_view, std::vector<Operation>> by_key;
  for (const Operation& op : ops) by_key[op.key].push_back(op);
  CheckResult total;
  for (const auto& [key, key_ops] : by_key) {
    CheckResult r = check_key(key_ops, options);
    total.steps += r.steps;
    total.ops += r.ops;
    ++total.keys;
    if (r.verdict != Verdict::kLinearizable) {
      total.verdict = r.verdict;
      total.key = r.key;
      total.detail = r.detail;
      return total;
    }
  }
  return total;
}

}  // namespace tally::sim
