// Stream commands, with redis-server 7's replies and errors: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
// XSETID, XREAD, XREADGROUP, XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO. XREAD and XREADGROUP
// here answer at once; with BLOCK the session runs them as probes until they find something
// (host/server/blocking.cc). Approximate trimming (`~`) trims to the exact threshold, at most LIMIT
// entries per call: tallyd has no nodes of entries whose boundaries would leave some behind.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::StreamId;
using store::StreamValue;
using store::ValueType;

constexpr std::string_view kErrInvalidId = "ERR Invalid stream ID specified as stream command argument";
constexpr std::string_view kErrInvalidStart = "ERR invalid start ID for the interval";
constexpr std::string_view kErrInvalidEnd = "ERR invalid end ID for the interval";
constexpr uint64_t kApproxTrimLimit = 100 * 100;  // Redis: 100 × stream-node-max-entries
constexpr uint64_t kAutoclaimAttemptsFactor = 10;

// Redis's string2ull: string2ll's strict form when it fits, else strtoull over all of it.
bool parse_u64_redis(std::string_view s, uint64_t& out) {
  int64_t v = 0;
  if (parse_i64(s, v)) {
    if (v < 0) return false;
    out = static_cast<uint64_t>(v);
    return true;
  }
  char buf[128];
  if (s.empty() || s.size() >= sizeof buf) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(buf, &end, 10);
  return errno != ERANGE && errno != EINVAL && end == buf + s.size();
}

// Redis's streamGenericParseIDOrReply: "-", "+" (not when strict), "ms", "ms-seq", and "ms-*" when
// seq_given is asked for (it then reads false).
bool parse_id(std::string_view s, uint64_t missing_seq, bool strict, StreamId& id, bool* seq_given = nullptr) {
  if (s.size() > 127) return false;
  if (s == "-" || s == "+") {
    if (strict) return false;
    if (seq_given != nullptr) *seq_given = true;
    id = s == "-" ? StreamId{} : StreamId::max();
    return true;
  }
  if (seq_given != nullptr) *seq_given = true;
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_u64_redis(s, id.ms)) return false;
    id.seq = missing_seq;
    return true;
  }
  if (!parse_u64_redis(s.substr(0, dash), id.ms)) return false;
  const std::string_view seq = s.substr(dash + 1);
  if (seq_given != nullptr && seq == "*") {
    id.seq = 0;
    *seq_given = false;
    return true;
  }
  return parse_u64_redis(seq, id.seq);
}

bool parse_id_or_reply(ExecContext& ctx, std::string_view s, uint64_t missing_seq, bool strict, StreamId& id) {
  if (parse_id(s, missing_seq, strict, id)) return true;
  ctx.out.error(kErrInvalidId);
  return false;
}

// A range end: "(" for exclusive (then strict), else as parse_id. Redis's streamParseIntervalIDOrReply.
bool parse_interval_id(ExecContext& ctx, std::string_view s, uint64_t missing_seq, StreamId& id, bool& exclusive) {
  exclusive = s.size() > 1 && s[0] == '(';
  if (exclusive) return parse_id_or_reply(ctx, s.substr(1), missing_seq, true, id);
  return parse_id_or_reply(ctx, s, missing_seq, false, id);
}

// Both ends of a range (XRANGE, XPENDING): "(" makes either exclusive, so it moves one id inward.
bool parse_range(ExecContext& ctx, std::string_view lo, std::string_view hi, StreamId& start, StreamId& end) {
  bool ex = false;
  if (!parse_interval_id(ctx, lo, 0, start, ex)) return false;
  if (ex && !start.incr(start)) {
    ctx.out.error(kErrInvalidStart);
    return false;
  }
  if (!parse_interval_id(ctx, hi, UINT64_MAX, end, ex)) return false;
  if (ex && !end.decr(end)) {
    ctx.out.error(kErrInvalidEnd);
    return false;
  }
  return true;
}

bool parse_count_or_reply(ExecContext& ctx, std::string_view s, int64_t& v) {
  if (parse_i64(s, v)) return true;
  ctx.out.error(kErrNotInt);
  return false;
}

void reply_id(ExecContext& ctx, StreamId id) {
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%llu-%llu", static_cast<unsigned long long>(id.ms),
                              static_cast<unsigned long long>(id.seq));
  ctx.out.bulk({buf, static_cast<size_t>(n)});
}

void reply_item(ExecContext& ctx, StreamId id, const StreamValue::Fields& f) {
  ctx.out.array(2);
  reply_id(ctx, id);
  ctx.out.array(f.size());
  for (const std::string& s : f) ctx.out.bulk(s);
}

// Entries of [start, end] in order (or reversed), at most `count` (0: all). Returns how many.
size_t reply_range(ExecContext& ctx, const StreamValue& s, StreamId start, StreamId end, uint64_t count, bool rev) {
  const size_t at = ctx.out.size();
  ctx.out.array(0);
  size_t n = 0;
  if (start <= end) {
    if (!rev) {
      for (auto it = s.items().lower_bound(start); it != s.items().end() && it->first <= end; ++it) {
        if (count != 0 && n == count) break;
        reply_item(ctx, it->first, it->second);
        ++n;
      }
    } else {
      auto it = s.items().upper_bound(end);
      while (it != s.items().begin()) {
        --it;
        if (it->first < start || (count != 0 && n == count)) break;
        reply_item(ctx, it->first, it->second);
        ++n;
      }
    }
  }
  ctx.out.set_count(at, n);
  return n;
}

Entry* lookup_stream(ExecContext& ctx, std::string_view key, Access access, bool& wrong_type) {
  Entry* e = ctx.store.lookup(key, ctx.now_ms, access);
  wrong_type = e != nullptr && e->type() != ValueType::kStream;
  if (wrong_type) ctx.out.error(kErrWrongType);
  return wrong_type ? nullptr : e;
}

// ---- XADD / XTRIM argument parsing (Redis's streamParseAddOrTrimArgsOrReply) ----

struct TrimArgs {
  enum class Strategy : uint8_t { kNone, kMaxLen, kMinId } strategy = Strategy::kNone;
  bool approx = false;
  uint64_t maxlen = 0;
  StreamId minid;
  uint64_t limit = 0;  // 0: none
  // XADD only
  bool nomkstream = false;
  bool id_given = false;
  bool seq_given = true;
  StreamId id;
  size_t id_at = 0;
};

bool parse_trim_args(ExecContext& ctx, Argv argv, bool xadd, TrimArgs& a) {
  bool limit_given = false;
  size_t i = 2;
  for (; i < argv.size(); ++i) {
    const size_t more = argv.size() - 1 - i;
    const std::string_view o = argv[i];
    if (xadd && o == "*") break;
    const bool maxlen = iequals(o, "maxlen"), minid = iequals(o, "minid");
    if ((maxlen || minid) && more > 0 && a.strategy != TrimArgs::Strategy::kNone) {
      ctx.out.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
      return false;
    }
    if (maxlen && more > 0) {
      a.approx = false;
      const std::string_view next = argv[i + 1];
      if (more >= 2 && (next == "~" || next == "=")) {
        a.approx = next == "~";
        ++i;
      }
      int64_t v = 0;
      if (!parse_count_or_reply(ctx, argv[i + 1], v)) return false;
      if (v < 0) {
        ctx.out.error("ERR The MAXLEN argument must be >= 0.");
        return false;
      }
      a.maxlen = static_cast<uint64_t>(v);
      a.strategy = TrimArgs::Strategy::kMaxLen;
      ++i;
    } else if (minid && more > 0) {
      a.approx = false;
      const std::string_view next = argv[i + 1];
      if (more >= 2 && (next == "~" || next == "=")) {
        a.approx = next == "~";
        ++i;
      }
      if (!parse_id_or_reply(ctx, argv[i + 1], 0, true, a.minid)) return false;
      a.strategy = TrimArgs::Strategy::kMinId;
      ++i;
    } else if (xadd && iequals(o, "nomkstream")) {
      a.nomkstream = true;
    } else if (iequals(o, "limit") && more > 0) {
      int64_t v = 0;
      if (!parse_count_or_reply(ctx, argv[i + 1], v)) return false;
      if (v < 0) {
        ctx.out.error("ERR The LIMIT argument must be >= 0.");
        return false;
      }
      a.limit = static_cast<uint64_t>(v);
      limit_given = true;
      ++i;
    } else if (xadd) {
      // Not an option: the id.
      if (!parse_id(o, 0, true, a.id, &a.seq_given)) {
        ctx.out.error(kErrInvalidId);
        return false;
      }
      a.id_given = true;
      break;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  if (limit_given && a.strategy == TrimArgs::Strategy::kNone) {
    ctx.out.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    return false;
  }
  if (!xadd && a.strategy == TrimArgs::Strategy::kNone) {
    ctx.out.error("ERR syntax error, XTRIM must be called with a trimming strategy");
    return false;
  }
  if (limit_given) {
    if (!a.approx) {
      ctx.out.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
      return false;
    }
  } else {
    a.limit = a.approx ? kApproxTrimLimit : 0;
  }
  a.id_at = i;
  return true;
}

size_t trim(StreamValue& s, const TrimArgs& a) {
  if (a.strategy == TrimArgs::Strategy::kMaxLen) return s.trim_maxlen(a.maxlen, a.limit);
  if (a.strategy == TrimArgs::Strategy::kMinId) return s.trim_minid(a.minid, a.limit);
  return 0;
}

// ---- XREAD / XREADGROUP argument parsing ----

struct ReadArgs {
  int64_t count = 0;  // 0: all
  bool block = false;
  bool noack = false;
  std::string_view group, consumer;
  bool has_group = false;
  size_t streams_at = 0;  // first key
  size_t nstreams = 0;
};

bool parse_read_args(ExecContext& ctx, Argv argv, bool group_read, ReadArgs& a) {
  const std::string_view name = group_read ? "XREADGROUP" : "XREAD";
  for (size_t i = 1; i < argv.size(); ++i) {
    const size_t more = argv.size() - 1 - i;
    const std::string_view o = argv[i];
    if (iequals(o, "block") && more > 0) {
      ++i;
      int64_t ms = 0;
      if (!parse_i64(argv[i], ms)) {
        ctx.out.error("ERR timeout is not an integer or out of range");
        return false;
      }
      if (ms < 0) {
        ctx.out.error("ERR timeout is negative");
        return false;
      }
      a.block = true;
    } else if (iequals(o, "count") && more > 0) {
      ++i;
      if (!parse_count_or_reply(ctx, argv[i], a.count)) return false;
      if (a.count < 0) a.count = 0;
    } else if (iequals(o, "streams") && more > 0) {
      a.streams_at = i + 1;
      const size_t rest = argv.size() - a.streams_at;
      if (rest % 2 != 0) {
        ctx.out.error(std::string("ERR Unbalanced ") + std::string(name) +
                      " list of streams: for each stream key an ID or '" + (group_read ? ">" : "$") +
                      "' must be specified.");
        return false;
      }
      a.nstreams = rest / 2;
      break;
    } else if (iequals(o, "group") && more >= 2) {
      if (!group_read) {
        ctx.out.error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
        return false;
      }
      a.group = argv[i + 1];
      a.consumer = argv[i + 2];
      a.has_group = true;
      i += 2;
    } else if (iequals(o, "noack")) {
      if (!group_read) {
        ctx.out.error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
        return false;
      }
      a.noack = true;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  if (a.streams_at == 0) {
    ctx.out.error(kErrSyntax);
    return false;
  }
  if (group_read && !a.has_group) {
    ctx.out.error("ERR Missing GROUP option for XREADGROUP");
    return false;
  }
  return true;
}

std::string nogroup_read(std::string_view key, std::string_view group) {
  return "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) +
         "' in XREADGROUP with GROUP option";
}

std::string nogroup(std::string_view key, std::string_view group) {
  return "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) + "'";
}

std::string nogroup_for_key(std::string_view group, std::string_view key) {
  return "NOGROUP No such consumer group '" + std::string(group) + "' for key name '" + std::string(key) + "'";
}

void read_streams(ExecContext& ctx, Argv argv, bool group_read) {
  ReadArgs a;
  if (!parse_read_args(ctx, argv, group_read, a)) return;
  const size_t n = a.nstreams;
  std::vector<StreamId> ids(n);
  std::vector<bool> new_only(n, false);  // XREADGROUP's ">"
  std::vector<Entry*> entries(n, nullptr);
  // Types, groups and ids first: an error leaves nothing half done.
  for (size_t i = 0; i < n; ++i) {
    const std::string_view key = argv[a.streams_at + i];
    const std::string_view arg = argv[a.streams_at + n + i];
    bool wrong = false;
    entries[i] = lookup_stream(ctx, key, group_read ? Access::kWrite : Access::kRead, wrong);
    if (wrong) return;
    if (group_read && (entries[i] == nullptr || entries[i]->stream_value()->group(a.group) == nullptr)) {
      ctx.out.error(nogroup_read(key, a.group));
      return;
    }
    if (arg == "$") {
      if (group_read) {
        ctx.out.error(
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this "
            "consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just "
            "return an empty result set.");
        return;
      }
      ids[i] = entries[i] != nullptr ? entries[i]->stream_value()->last_id() : StreamId{};
      continue;
    }
    if (arg == ">") {
      if (!group_read) {
        ctx.out.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> "
                      "<consumer> option.");
        return;
      }
      new_only[i] = true;
      ids[i] = StreamId::max();
      continue;
    }
    if (!parse_id_or_reply(ctx, arg, 0, true, ids[i])) return;
  }
  // A change stream reader resuming from an id whose successors retention removed would miss changes:
  // it is told so, never served a gap. 0-0 (and $) ask for whatever is kept.
  for (size_t i = 0; i < n; ++i) {
    const std::string_view key = argv[a.streams_at + i];
    if (entries[i] == nullptr || !is_change_stream_key(key)) continue;
    const StreamValue& s = *entries[i]->stream_value();
    const StreamId after = new_only[i] ? s.group(a.group)->last_id : ids[i];
    if (after.is_zero() || !(after < s.max_deleted())) continue;
    ctx.out.error("OUTOFRANGE the change stream " + std::string(key) + " no longer holds the entries after " +
                  after.str() + " (the oldest kept is " + s.first_id().str() +
                  "): rebuild from a snapshot of the data, then read on from its newest id" +
                  (new_only[i] ? " (XGROUP SETID)" : ""));
    return;
  }
  const uint64_t count = static_cast<uint64_t>(a.count);
  const size_t top = ctx.out.size();
  ctx.out.map_pairs_in_resp2(0);
  size_t served = 0;
  for (size_t i = 0; i < n; ++i) {
    Entry* e = entries[i];
    if (e == nullptr) continue;
    const std::string_view key = argv[a.streams_at + i];
    if (!group_read) {
      const StreamValue& s = *e->stream_value();
      if (s.empty() || s.items().rbegin()->first <= ids[i]) continue;
      StreamId start;
      if (!ids[i].incr(start)) continue;
      ctx.out.bulk(key);
      reply_range(ctx, s, start, StreamId::max(), count, false);
      ++served;
      continue;
    }
    const StreamValue::Group& g0 = *e->stream_value()->group(a.group);
    const StreamValue& s0 = *e->stream_value();
    const bool history = !new_only[i];
    const bool fresh = !history && !s0.empty() && s0.items().rbegin()->first > g0.last_id;
    bool has_history = false;
    if (history) {
      auto c = g0.consumers.find(a.consumer);
      StreamId start;
      has_history = c != g0.consumers.end() && ids[i].incr(start) && c->second.pending.lower_bound(start) != c->second.pending.end();
    }
    if (!history && !fresh) continue;  // nothing new: not served (no consumer is created, as in Redis)
    if (!has_history && !fresh) {
      // A history read with nothing pending answers its key with nothing. The consumer is seen (created
      // if new), and that is bookkeeping, not a write: WATCH and blocked readers do not see it.
      ctx.store.edit_stream_quiet(e, [&](StreamValue& s) {
        StreamValue::Group& g = *s.group_mut(a.group);
        s.consumer(g, a.consumer).seen_ms = ctx.now_ms;
      });
      {
        ++served;
        ctx.out.bulk(key);
        ctx.out.array(0);
      }
      continue;
    }
    ++served;
    ctx.out.bulk(key);
    ctx.store.edit_stream(e, [&](StreamValue& s) {
      StreamValue::Group& g = *s.group_mut(a.group);
      StreamValue::Consumer& c = s.consumer(g, a.consumer);
      c.seen_ms = ctx.now_ms;
      const size_t at = ctx.out.size();
      ctx.out.array(0);
      size_t m = 0;
      if (history) {
        // The consumer's own pending entries after the id: delivered again (a deleted one shows nil).
        StreamId start;
        if (ids[i].incr(start)) {
          std::vector<StreamId> pending(c.pending.lower_bound(start), c.pending.end());
          for (StreamId id : pending) {
            if (count != 0 && m == count) break;
            auto it = s.items().find(id);
            if (it == s.items().end()) {
              ctx.out.array(2);
              reply_id(ctx, id);
              ctx.out.null_array();
            } else {
              reply_item(ctx, id, it->second);
              auto p = g.pel.find(id);
              s.pend(g, id, a.consumer, c, ctx.now_ms, p->second.deliveries + 1);
            }
            ++m;
          }
        }
      } else {
        StreamId start;
        g.last_id.incr(start);
        std::vector<StreamId> got;
        for (auto it = s.items().lower_bound(start); it != s.items().end(); ++it) {
          if (count != 0 && m == count) break;
          reply_item(ctx, it->first, it->second);
          got.push_back(it->first);
          ++m;
        }
        for (StreamId id : got) {
          s.deliver_new(g, id);
          if (!a.noack) s.pend(g, id, a.consumer, c, ctx.now_ms, 1);
        }
        if (m > 0) c.active_ms = ctx.now_ms;
      }
      ctx.out.set_count(at, m);
    });
  }
  if (served == 0) {
    ctx.out.truncate(top);
    ctx.out.null_array();
    return;
  }
  ctx.out.set_count(top, served);
}

void reply_group_help(ExecContext& ctx, std::initializer_list<const char*> lines) {
  ctx.out.array(lines.size());
  for (const char* l : lines) ctx.out.simple(l);
}

}  // namespace

void xadd(ExecContext& ctx, Argv argv) {
  TrimArgs a;
  if (!parse_trim_args(ctx, argv, true, a)) return;
  const size_t fields_at = a.id_at + 1;
  if (argv.size() < fields_at + 2 || (argv.size() - fields_at) % 2 != 0) return wrong_arity(ctx, argv[0]);
  if (a.id_given && a.seq_given && a.id.is_zero()) {
    ctx.out.error("ERR The ID specified in XADD must be greater than 0-0");
    return;
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr) {
    if (a.nomkstream) {
      ctx.out.null();
      return;
    }
    e = ctx.store.create_stream(argv[1]);
  }
  const StreamValue& s = *e->stream_value();
  const StreamId last = s.last_id();
  if (last == StreamId::max()) {
    ctx.out.error("ERR The stream has exhausted the last possible ID, unable to add more items");
    return;
  }
  StreamId id;
  if (!a.id_given) {
    if (ctx.now_ms > last.ms) {
      id = {ctx.now_ms, 0};
    } else {
      last.incr(id);
    }
  } else if (a.seq_given) {
    id = a.id;
  } else if (last.ms == a.id.ms) {
    if (last.seq == UINT64_MAX) {
      ctx.out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item");
      return;
    }
    id = {last.ms, last.seq + 1};
  } else {
    id = a.id;
  }
  if (id <= last) {
    ctx.out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item");
    return;
  }
  ctx.store.edit_stream(e, [&](StreamValue& v) {
    v.append(id, argv.subspan(fields_at));
    trim(v, a);
  });
  reply_id(ctx, id);
}

void xtrim(ExecContext& ctx, Argv argv) {
  TrimArgs a;
  if (!parse_trim_args(ctx, argv, false, a)) return;
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr) {
    ctx.out.integer(0);
    return;
  }
  // A trim that removes nothing is not a write (no CAS change: WATCH and waiters do not see it).
  const StreamValue& s = *e->stream_value();
  const bool any = a.strategy == TrimArgs::Strategy::kMaxLen ? s.size() > a.maxlen
                                                             : !s.empty() && s.first_id() < a.minid;
  const size_t n = any ? ctx.store.edit_stream(e, [&](StreamValue& v) { return trim(v, a); }) : 0;
  ctx.out.integer(static_cast<int64_t>(n));
}

void xdel(ExecContext& ctx, Argv argv) {
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr) {
    ctx.out.integer(0);
    return;
  }
  std::vector<StreamId> ids(argv.size() - 2);
  for (size_t i = 2; i < argv.size(); ++i) {
    if (!parse_id_or_reply(ctx, argv[i], 0, true, ids[i - 2])) return;
  }
  size_t present = 0;
  for (StreamId id : ids) present += e->stream_value()->items().contains(id) ? 1 : 0;
  size_t n = 0;
  if (present > 0) {
    n = ctx.store.edit_stream(e, [&](StreamValue& s) {
      size_t d = 0;
      for (StreamId id : ids) d += s.erase(id) ? 1 : 0;
      return d;
    });
  }
  ctx.out.integer(static_cast<int64_t>(n));
}

void xlen(ExecContext& ctx, Argv argv) {
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kRead, wrong);
  if (wrong) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->stream_value()->size()));
}

static void range_command(ExecContext& ctx, Argv argv, bool rev) {
  StreamId start, end;
  if (!parse_range(ctx, rev ? argv[3] : argv[2], rev ? argv[2] : argv[3], start, end)) return;
  int64_t count = -1;
  for (size_t j = 4; j < argv.size(); ++j) {
    if (iequals(argv[j], "count") && j + 1 < argv.size()) {
      if (!parse_count_or_reply(ctx, argv[j + 1], count)) return;
      if (count < 0) count = 0;
      ++j;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kRead, wrong);
  if (wrong) return;
  if (e == nullptr) {
    ctx.out.array(0);
    return;
  }
  if (count == 0) {
    ctx.out.null_array();
    return;
  }
  reply_range(ctx, *e->stream_value(), start, end, count < 0 ? 0 : static_cast<uint64_t>(count), rev);
}

void xrange(ExecContext& ctx, Argv argv) { range_command(ctx, argv, false); }
void xrevrange(ExecContext& ctx, Argv argv) { range_command(ctx, argv, true); }

void xread(ExecContext& ctx, Argv argv) { read_streams(ctx, argv, false); }
void xreadgroup(ExecContext& ctx, Argv argv) { read_streams(ctx, argv, true); }

void xsetid(ExecContext& ctx, Argv argv) {
  StreamId id, max_deleted;
  int64_t added = -1;
  if (!parse_id_or_reply(ctx, argv[2], 0, true, id)) return;
  for (size_t i = 3; i < argv.size(); i += 2) {
    if (iequals(argv[i], "entriesadded") && i + 1 < argv.size()) {
      if (!parse_count_or_reply(ctx, argv[i + 1], added)) return;
      if (added < 0) {
        ctx.out.error("ERR entries_added must be positive");
        return;
      }
    } else if (iequals(argv[i], "maxdeletedid") && i + 1 < argv.size()) {
      if (!parse_id_or_reply(ctx, argv[i + 1], 0, true, max_deleted)) return;
      if (id < max_deleted) {
        ctx.out.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
        return;
      }
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  const StreamValue& s = *e->stream_value();
  if (id < s.max_deleted()) {
    ctx.out.error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    return;
  }
  if (!s.empty()) {
    if (id < s.items().rbegin()->first) {
      ctx.out.error("ERR The ID specified in XSETID is smaller than the target stream top item");
      return;
    }
    if (added != -1 && s.size() > static_cast<uint64_t>(added)) {
      ctx.out.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
      return;
    }
  }
  ctx.store.edit_stream(e, [&](StreamValue& v) {
    v.set_ids(id, added != -1 ? static_cast<uint64_t>(added) : v.entries_added(),
              max_deleted.is_zero() ? v.max_deleted() : max_deleted);
  });
  ctx.out.ok();
}

void xgroup(ExecContext& ctx, Argv argv) {
  const std::string_view sub = argv[1];
  const bool create = iequals(sub, "create"), setid = iequals(sub, "setid"), destroy = iequals(sub, "destroy");
  const bool mkconsumer = iequals(sub, "createconsumer"), delconsumer = iequals(sub, "delconsumer");
  if (iequals(sub, "help")) {
    if (argv.size() != 2) return wrong_arity(ctx, "xgroup|help");
    reply_group_help(ctx, {
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Print this help.",
    });
    return;
  }
  if (!create && !setid && !destroy && !mkconsumer && !delconsumer) {
    ctx.out.error("ERR unknown subcommand '" + std::string(sub) + "'. Try XGROUP HELP.");
    return;
  }
  const size_t argc = argv.size();
  const bool arity_ok = create || setid ? argc >= 5 : destroy ? argc == 4 : argc == 5;
  if (!arity_ok) {
    std::string name = "xgroup|";
    for (char c : sub) name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return wrong_arity(ctx, name);
  }
  bool mkstream = false;
  int64_t entries_read = StreamValue::kEntriesReadUnknown;
  if (create || setid) {
    for (size_t i = 5; i < argc;) {
      if (create && iequals(argv[i], "mkstream")) {
        mkstream = true;
        ++i;
      } else if (iequals(argv[i], "entriesread") && i + 1 < argc) {
        if (!parse_count_or_reply(ctx, argv[i + 1], entries_read)) return;
        if (entries_read < 0 && entries_read != StreamValue::kEntriesReadUnknown) {
          ctx.out.error("ERR value for ENTRIESREAD must be positive or -1");
          return;
        }
        i += 2;
      } else {
        ctx.out.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) +
                      "'. Try XGROUP HELP.");
        return;
      }
    }
  }
  const std::string_view key = argv[2], group = argv[3];
  bool wrong = false;
  Entry* e = lookup_stream(ctx, key, Access::kWrite, wrong);
  if (wrong) return;
  if (!mkstream) {
    if (e == nullptr) {
      ctx.out.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
                    "use the MKSTREAM option to create an empty stream automatically.");
      return;
    }
    if ((setid || mkconsumer || delconsumer) && e->stream_value()->group(group) == nullptr) {
      ctx.out.error(nogroup_for_key(group, key));
      return;
    }
  }
  if (create) {
    StreamId id;
    if (argv[4] == "$") {
      id = e != nullptr ? e->stream_value()->last_id() : StreamId{};
    } else if (!parse_id_or_reply(ctx, argv[4], 0, true, id)) {
      return;
    }
    if (e != nullptr && e->stream_value()->group(group) != nullptr) {
      ctx.out.error("BUSYGROUP Consumer Group name already exists");
      return;
    }
    if (e == nullptr) e = ctx.store.create_stream(key);
    ctx.store.edit_stream(e, [&](StreamValue& s) { s.create_group(group, id, entries_read); });
    ctx.out.ok();
  } else if (setid) {
    StreamId id;
    if (argv[4] == "$") {
      id = e->stream_value()->last_id();
    } else if (!parse_id_or_reply(ctx, argv[4], 0, false, id)) {
      return;
    }
    ctx.store.edit_stream(e, [&](StreamValue& s) {
      StreamValue::Group& g = *s.group_mut(group);
      g.last_id = id;
      g.entries_read = entries_read;
    });
    ctx.out.ok();
  } else if (destroy) {
    const bool had = e->stream_value()->group(group) != nullptr;
    if (had) ctx.store.edit_stream(e, [&](StreamValue& s) { s.destroy_group(group); });
    ctx.out.integer(had ? 1 : 0);
  } else if (mkconsumer) {
    const bool had = e->stream_value()->group(group)->consumers.contains(argv[4]);
    if (!had) {
      ctx.store.edit_stream(e, [&](StreamValue& s) { s.consumer(*s.group_mut(group), argv[4]).seen_ms = ctx.now_ms; });
    }
    ctx.out.integer(had ? 0 : 1);
  } else {
    const bool had = e->stream_value()->group(group)->consumers.contains(argv[4]);
    int64_t n = 0;
    if (had) n = ctx.store.edit_stream(e, [&](StreamValue& s) { return s.delete_consumer(*s.group_mut(group), argv[4]); });
    ctx.out.integer(n);
  }
}

void xack(ExecContext& ctx, Argv argv) {
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  const StreamValue::Group* g = e == nullptr ? nullptr : e->stream_value()->group(argv[2]);
  if (g == nullptr) {  // no key or group: nothing to acknowledge
    ctx.out.integer(0);
    return;
  }
  // Every id is checked before any is acknowledged: all or nothing.
  std::vector<StreamId> ids(argv.size() - 3);
  for (size_t i = 3; i < argv.size(); ++i) {
    if (!parse_id_or_reply(ctx, argv[i], 0, true, ids[i - 3])) return;
  }
  size_t pending = 0;
  for (StreamId id : ids) pending += g->pel.contains(id) ? 1 : 0;
  size_t n = 0;
  if (pending > 0) {
    n = ctx.store.edit_stream(e, [&](StreamValue& s) {
      StreamValue::Group& gm = *s.group_mut(argv[2]);
      size_t acked = 0;
      for (StreamId id : ids) acked += s.ack(gm, id) ? 1 : 0;
      return acked;
    });
  }
  ctx.out.integer(static_cast<int64_t>(n));
}

void xpending(ExecContext& ctx, Argv argv) {
  const size_t argc = argv.size();
  const bool summary = argc == 3;
  if (argc != 3 && (argc < 6 || argc > 9)) {
    ctx.out.error(kErrSyntax);
    return;
  }
  StreamId start, end;
  int64_t count = 0, min_idle = 0;
  std::string_view consumer;
  bool has_consumer = false;
  if (argc >= 6) {
    size_t at = 3;
    if (iequals(argv[3], "idle")) {
      if (!parse_count_or_reply(ctx, argv[4], min_idle)) return;
      if (argc < 8) {
        ctx.out.error(kErrSyntax);
        return;
      }
      at += 2;
    }
    if (!parse_count_or_reply(ctx, argv[at + 2], count)) return;
    if (count < 0) count = 0;
    if (!parse_range(ctx, argv[at], argv[at + 1], start, end)) return;
    if (at + 3 < argc) {
      consumer = argv[at + 3];
      has_consumer = true;
    }
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kRead, wrong);
  if (wrong) return;
  const StreamValue::Group* g = e == nullptr ? nullptr : e->stream_value()->group(argv[2]);
  if (g == nullptr) {
    ctx.out.error(nogroup(argv[1], argv[2]));
    return;
  }
  if (summary) {
    ctx.out.array(4);
    ctx.out.integer(static_cast<int64_t>(g->pel.size()));
    if (g->pel.empty()) {
      ctx.out.null();
      ctx.out.null();
      ctx.out.null_array();
      return;
    }
    reply_id(ctx, g->pel.begin()->first);
    reply_id(ctx, g->pel.rbegin()->first);
    size_t with = 0;
    for (const auto& [name, c] : g->consumers) with += c.pending.empty() ? 0 : 1;
    ctx.out.array(with);
    for (const auto& [name, c] : g->consumers) {
      if (c.pending.empty()) continue;
      ctx.out.array(2);
      ctx.out.bulk(name);
      ctx.out.bulk(std::to_string(c.pending.size()));
    }
    return;
  }
  const StreamValue::Consumer* c = nullptr;
  if (has_consumer) {
    auto it = g->consumers.find(consumer);
    if (it == g->consumers.end()) {
      ctx.out.array(0);
      return;
    }
    c = &it->second;
  }
  const size_t at = ctx.out.size();
  ctx.out.array(0);
  size_t n = 0;
  auto emit = [&](StreamId id, const StreamValue::Pending& p) {
    const int64_t idle = ctx.now_ms > p.delivery_ms ? static_cast<int64_t>(ctx.now_ms - p.delivery_ms) : 0;
    if (min_idle != 0 && idle < min_idle) return;
    ctx.out.array(4);
    reply_id(ctx, id);
    ctx.out.bulk(p.consumer);
    ctx.out.integer(idle);
    ctx.out.integer(static_cast<int64_t>(p.deliveries));
    ++n;
  };
  if (c != nullptr) {
    for (auto it = c->pending.lower_bound(start); count > 0 && it != c->pending.end() && *it <= end; ++it) {
      const size_t before = n;
      emit(*it, g->pel.at(*it));
      if (n != before) --count;
    }
  } else {
    for (auto it = g->pel.lower_bound(start); count > 0 && it != g->pel.end() && it->first <= end; ++it) {
      const size_t before = n;
      emit(it->first, it->second);
      if (n != before) --count;
    }
  }
  ctx.out.set_count(at, n);
}

void xclaim(ExecContext& ctx, Argv argv) {
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr || e->stream_value()->group(argv[2]) == nullptr) {
    ctx.out.error(nogroup(argv[1], argv[2]));
    return;
  }
  int64_t min_idle = 0;
  if (!parse_i64(argv[4], min_idle)) {
    ctx.out.error("ERR Invalid min-idle-time argument for XCLAIM");
    return;
  }
  if (min_idle < 0) min_idle = 0;
  std::vector<StreamId> ids;
  size_t j = 5;
  for (; j < argv.size(); ++j) {
    StreamId id;
    if (!parse_id(argv[j], 0, true, id)) break;
    ids.push_back(id);
  }
  const uint64_t now = ctx.now_ms;
  int64_t delivery = -1, retries = -1;
  bool force = false, justid = false;
  StreamId last_id;
  for (; j < argv.size(); ++j) {
    const bool more = j + 1 < argv.size();
    const std::string_view o = argv[j];
    if (iequals(o, "force")) {
      force = true;
    } else if (iequals(o, "justid")) {
      justid = true;
    } else if (iequals(o, "idle") && more) {
      if (!parse_i64(argv[++j], delivery)) {
        ctx.out.error("ERR Invalid IDLE option argument for XCLAIM");
        return;
      }
      delivery = static_cast<int64_t>(now) - delivery;
    } else if (iequals(o, "time") && more) {
      if (!parse_i64(argv[++j], delivery)) {
        ctx.out.error("ERR Invalid TIME option argument for XCLAIM");
        return;
      }
    } else if (iequals(o, "retrycount") && more) {
      if (!parse_i64(argv[++j], retries)) {
        ctx.out.error("ERR Invalid RETRYCOUNT option argument for XCLAIM");
        return;
      }
    } else if (iequals(o, "lastid") && more) {
      if (!parse_id_or_reply(ctx, argv[++j], 0, true, last_id)) return;
    } else {
      ctx.out.error("ERR Unrecognized XCLAIM option '" + std::string(o) + "'");
      return;
    }
  }
  if (delivery == -1 || delivery < 0 || delivery > static_cast<int64_t>(now)) delivery = static_cast<int64_t>(now);
  const std::string_view name = argv[3];
  ctx.store.edit_stream(e, [&](StreamValue& s) {
    StreamValue::Group& g = *s.group_mut(argv[2]);
    if (last_id > g.last_id) g.last_id = last_id;
    const size_t at = ctx.out.size();
    ctx.out.array(0);
    size_t n = 0;
    StreamValue::Consumer* c = nullptr;
    for (StreamId id : ids) {
      auto item = s.items().find(id);
      auto p = g.pel.find(id);
      if (item == s.items().end()) {
        if (p != g.pel.end()) s.ack(g, id);  // gone from the stream: gone from the PEL
        continue;
      }
      uint64_t deliveries = 0;
      if (p == g.pel.end()) {
        if (!force) continue;
        deliveries = 1;
      } else {
        if (min_idle != 0 && static_cast<int64_t>(now - std::min(now, p->second.delivery_ms)) < min_idle) continue;
        deliveries = p->second.deliveries;
      }
      if (c == nullptr) c = &s.consumer(g, name);
      if (retries >= 0) {
        deliveries = static_cast<uint64_t>(retries);
      } else if (!justid) {
        ++deliveries;
      }
      s.pend(g, id, name, *c, static_cast<uint64_t>(delivery), deliveries);
      c->active_ms = now;
      if (justid) {
        reply_id(ctx, id);
      } else {
        reply_item(ctx, id, item->second);
      }
      ++n;
    }
    ctx.out.set_count(at, n);
  });
}

void xautoclaim(ExecContext& ctx, Argv argv) {
  int64_t min_idle = 0;
  if (!parse_i64(argv[4], min_idle)) {
    ctx.out.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    return;
  }
  if (min_idle < 0) min_idle = 0;
  StreamId start;
  bool ex = false;
  if (!parse_interval_id(ctx, argv[5], 0, start, ex)) return;
  if (ex && !start.incr(start)) {
    ctx.out.error(kErrInvalidStart);
    return;
  }
  int64_t count = 100;
  bool justid = false;
  for (size_t j = 6; j < argv.size(); ++j) {
    if (iequals(argv[j], "count") && j + 1 < argv.size()) {
      const int64_t max_count = INT64_MAX / static_cast<int64_t>(std::max<size_t>(sizeof(StreamId), kAutoclaimAttemptsFactor));
      if (!parse_i64(argv[j + 1], count) || count < 1 || count > max_count) {
        ctx.out.error("ERR COUNT must be > 0");
        return;
      }
      ++j;
    } else if (iequals(argv[j], "justid")) {
      justid = true;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[1], Access::kWrite, wrong);
  if (wrong) return;
  if (e == nullptr || e->stream_value()->group(argv[2]) == nullptr) {
    ctx.out.error(nogroup(argv[1], argv[2]));
    return;
  }
  const uint64_t now = ctx.now_ms;
  const std::string_view name = argv[3];
  ctx.store.edit_stream(e, [&](StreamValue& s) {
    StreamValue::Group& g = *s.group_mut(argv[2]);
    std::vector<StreamId> claimed, deleted;
    uint64_t attempts = static_cast<uint64_t>(count) * kAutoclaimAttemptsFactor;
    uint64_t left = static_cast<uint64_t>(count);
    StreamValue::Consumer* c = nullptr;
    auto it = g.pel.lower_bound(start);
    for (; attempts > 0 && left > 0 && it != g.pel.end(); --attempts) {
      const StreamId id = it->first;
      if (!s.items().contains(id)) {  // gone from the stream: gone from the PEL
        ++it;
        s.ack(g, id);
        deleted.push_back(id);
        --left;
        continue;
      }
      if (min_idle != 0 && static_cast<int64_t>(now - std::min(now, it->second.delivery_ms)) < min_idle) {
        ++it;
        continue;
      }
      if (c == nullptr) c = &s.consumer(g, name);
      const uint64_t deliveries = it->second.deliveries + (justid ? 0 : 1);
      ++it;
      s.pend(g, id, name, *c, now, deliveries);
      c->active_ms = now;
      claimed.push_back(id);
      --left;
    }
    // The cursor: the next pending entry, 0-0 when the walk reached the end.
    ctx.out.array(3);
    reply_id(ctx, it == g.pel.end() ? StreamId{} : it->first);
    ctx.out.array(claimed.size());
    for (StreamId id : claimed) justid ? reply_id(ctx, id) : reply_item(ctx, id, s.items().at(id));
    ctx.out.array(deleted.size());
    for (StreamId id : deleted) reply_id(ctx, id);
  });
}

void xinfo(ExecContext& ctx, Argv argv) {
  const std::string_view sub = argv[1];
  if (iequals(sub, "help")) {
    if (argv.size() != 2) return wrong_arity(ctx, "xinfo|help");
    reply_group_help(ctx, {
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Print this help.",
    });
    return;
  }
  const bool consumers = iequals(sub, "consumers"), groups = iequals(sub, "groups"), stream = iequals(sub, "stream");
  if (!consumers && !groups && !stream) {
    ctx.out.error("ERR unknown subcommand '" + std::string(sub) + "'. Try XINFO HELP.");
    return;
  }
  const size_t argc = argv.size();
  if ((consumers && argc != 4) || (groups && argc != 3) || (stream && argc < 3)) {
    std::string name = "xinfo|";
    for (char c : sub) name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return wrong_arity(ctx, name);
  }
  bool wrong = false;
  Entry* e = lookup_stream(ctx, argv[2], Access::kRead, wrong);
  if (wrong) return;
  if (e == nullptr) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  const StreamValue& s = *e->stream_value();
  const uint64_t now = ctx.now_ms;
  auto since = [now](uint64_t t) { return static_cast<int64_t>(now > t ? now - t : 0); };
  if (consumers) {
    const StreamValue::Group* g = s.group(argv[3]);
    if (g == nullptr) {
      ctx.out.error(nogroup_for_key(argv[3], argv[2]));
      return;
    }
    ctx.out.array(g->consumers.size());
    for (const auto& [name, c] : g->consumers) {
      ctx.out.map(4);
      ctx.out.bulk("name");
      ctx.out.bulk(name);
      ctx.out.bulk("pending");
      ctx.out.integer(static_cast<int64_t>(c.pending.size()));
      ctx.out.bulk("idle");
      ctx.out.integer(since(c.seen_ms));
      ctx.out.bulk("inactive");
      ctx.out.integer(c.active_ms == 0 ? -1 : since(c.active_ms));
    }
    return;
  }
  auto group_lag = [&](const StreamValue::Group& g) {
    int64_t lag = 0;
    s.lag(g, lag) ? ctx.out.integer(lag) : ctx.out.null();
  };
  auto entries_read = [&](const StreamValue::Group& g) {
    g.entries_read == StreamValue::kEntriesReadUnknown ? ctx.out.null() : ctx.out.integer(g.entries_read);
  };
  if (groups) {
    ctx.out.array(s.groups().size());
    for (const auto& [name, g] : s.groups()) {
      ctx.out.map(6);
      ctx.out.bulk("name");
      ctx.out.bulk(name);
      ctx.out.bulk("consumers");
      ctx.out.integer(static_cast<int64_t>(g.consumers.size()));
      ctx.out.bulk("pending");
      ctx.out.integer(static_cast<int64_t>(g.pel.size()));
      ctx.out.bulk("last-delivered-id");
      reply_id(ctx, g.last_id);
      ctx.out.bulk("entries-read");
      entries_read(g);
      ctx.out.bulk("lag");
      group_lag(g);
    }
    return;
  }
  // XINFO STREAM key [FULL [COUNT n]]
  bool full = false;
  int64_t count = 10;
  if (argc > 3) {
    if (!iequals(argv[3], "full") || (argc != 4 && argc != 6) || (argc == 6 && !iequals(argv[4], "count"))) {
      ctx.out.error(kErrSyntax);
      return;
    }
    full = true;
    if (argc == 6) {
      if (!parse_count_or_reply(ctx, argv[5], count)) return;
      if (count < 0) count = 10;
    }
  }
  const size_t nodes = (s.size() + 99) / 100;
  ctx.out.map(full ? 9 : 10);
  ctx.out.bulk("length");
  ctx.out.integer(static_cast<int64_t>(s.size()));
  ctx.out.bulk("radix-tree-keys");
  ctx.out.integer(static_cast<int64_t>(nodes));
  ctx.out.bulk("radix-tree-nodes");
  ctx.out.integer(static_cast<int64_t>(nodes + 1));
  ctx.out.bulk("last-generated-id");
  reply_id(ctx, s.last_id());
  ctx.out.bulk("max-deleted-entry-id");
  reply_id(ctx, s.max_deleted());
  ctx.out.bulk("entries-added");
  ctx.out.integer(static_cast<int64_t>(s.entries_added()));
  ctx.out.bulk("recorded-first-entry-id");
  reply_id(ctx, s.first_id());
  if (!full) {
    ctx.out.bulk("groups");
    ctx.out.integer(static_cast<int64_t>(s.groups().size()));
    ctx.out.bulk("first-entry");
    if (s.empty()) {
      ctx.out.null();
    } else {
      reply_item(ctx, s.items().begin()->first, s.items().begin()->second);
    }
    ctx.out.bulk("last-entry");
    if (s.empty()) {
      ctx.out.null();
    } else {
      reply_item(ctx, s.items().rbegin()->first, s.items().rbegin()->second);
    }
    return;
  }
  const uint64_t limit = static_cast<uint64_t>(count);
  ctx.out.bulk("entries");
  reply_range(ctx, s, StreamId{}, StreamId::max(), limit, false);
  ctx.out.bulk("groups");
  ctx.out.array(s.groups().size());
  for (const auto& [name, g] : s.groups()) {
    ctx.out.map(7);
    ctx.out.bulk("name");
    ctx.out.bulk(name);
    ctx.out.bulk("last-delivered-id");
    reply_id(ctx, g.last_id);
    ctx.out.bulk("entries-read");
    entries_read(g);
    ctx.out.bulk("lag");
    group_lag(g);
    ctx.out.bulk("pel-count");
    ctx.out.integer(static_cast<int64_t>(g.pel.size()));
    ctx.out.bulk("pending");
    const size_t pel_at = ctx.out.size();
    ctx.out.array(0);
    size_t np = 0;
    for (const auto& [id, p] : g.pel) {
      if (limit != 0 && np == limit) break;
      ctx.out.array(4);
      reply_id(ctx, id);
      ctx.out.bulk(p.consumer);
      ctx.out.integer(static_cast<int64_t>(p.delivery_ms));
      ctx.out.integer(static_cast<int64_t>(p.deliveries));
      ++np;
    }
    ctx.out.set_count(pel_at, np);
    ctx.out.bulk("consumers");
    ctx.out.array(g.consumers.size());
    for (const auto& [cname, c] : g.consumers) {
      ctx.out.map(5);
      ctx.out.bulk("name");
      ctx.out.bulk(cname);
      ctx.out.bulk("seen-time");
      ctx.out.integer(static_cast<int64_t>(c.seen_ms));
      ctx.out.bulk("active-time");
      ctx.out.integer(c.active_ms == 0 ? -1 : static_cast<int64_t>(c.active_ms));
      ctx.out.bulk("pel-count");
      ctx.out.integer(static_cast<int64_t>(c.pending.size()));
      ctx.out.bulk("pending");
      const size_t cp_at = ctx.out.size();
      ctx.out.array(0);
      size_t nc = 0;
      for (StreamId id : c.pending) {
        if (limit != 0 && nc == limit) break;
        const StreamValue::Pending& p = g.pel.at(id);
        ctx.out.array(3);
        reply_id(ctx, id);
        ctx.out.integer(static_cast<int64_t>(p.delivery_ms));
        ctx.out.integer(static_cast<int64_t>(p.deliveries));
        ++nc;
      }
      ctx.out.set_count(cp_at, nc);
    }
  }
}

// The last ids of streams (0-0 for a missing key): what XREAD's "$" means when a blocking read starts.
void xlastids(ExecContext& ctx, Argv argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    bool wrong = false;
    lookup_stream(ctx, argv[i], Access::kPeek, wrong);
    if (wrong) return;
  }
  ctx.out.array(argv.size() - 1);
  for (size_t i = 1; i < argv.size(); ++i) {
    Entry* e = ctx.store.lookup(argv[i], ctx.now_ms, Access::kPeek);
    reply_id(ctx, e == nullptr ? StreamId{} : e->stream_value()->last_id());
  }
}

}  // namespace tally::server::cmd
