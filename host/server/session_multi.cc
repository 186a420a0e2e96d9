// Commands whose keys live on several shards: split per shard, run each part where its keys live,
// merge the replies in request order. Commands that cannot be split keep Redis Cluster's CROSSSLOT rule.
#include <charconv>
#include <memory>

#include "host/common/clock.h"
#include "host/common/rng.h"
#include "host/server/server.h"
#include "host/server/session.h"

namespace tally::server {

namespace {

constexpr uint64_t kScanShardShift = 48;
constexpr uint64_t kScanInnerMask = (uint64_t{1} << kScanShardShift) - 1;

// Reads the integer of a ":N\r\n" reply; false for anything else.
bool reply_integer(std::string_view r, int64_t& v) {
  if (r.size() < 4 || r[0] != ':') return false;
  auto [p, ec] = std::from_chars(r.data() + 1, r.data() + r.size(), v);
  return ec == std::errc();
}

// Splits "*N\r\n<elem>..." whose elements are bulk strings or nulls into element byte ranges.
bool split_flat_array(std::string_view r, std::vector<std::string_view>& elems) {
  if (r.empty() || r[0] != '*') return false;
  size_t eol = r.find("\r\n");
  if (eol == std::string_view::npos) return false;
  int64_t n = 0;
  std::from_chars(r.data() + 1, r.data() + eol, n);
  size_t pos = eol + 2;
  for (int64_t i = 0; i < n; ++i) {
    size_t start = pos;
    if (pos >= r.size()) return false;
    size_t line_end = r.find("\r\n", pos);
    if (line_end == std::string_view::npos) return false;
    if (r[pos] == '$') {
      int64_t len = 0;
      std::from_chars(r.data() + pos + 1, r.data() + line_end, len);
      pos = line_end + 2 + (len >= 0 ? static_cast<size_t>(len) + 2 : 0);
    } else {
      pos = line_end + 2;  // _ or a simple type
    }
    if (pos > r.size()) return false;
    elems.push_back(r.substr(start, pos - start));
  }
  return true;
}

// The body of an array reply (after "*N\r\n") and its count.
bool array_body(std::string_view r, int64_t& n, std::string_view& body) {
  if (r.empty() || (r[0] != '*' && r[0] != '~')) return false;
  size_t eol = r.find("\r\n");
  if (eol == std::string_view::npos) return false;
  auto [p, ec] = std::from_chars(r.data() + 1, r.data() + eol, n);
  if (ec != std::errc()) return false;
  body = r.substr(eol + 2);
  return true;
}

}  // namespace

void Session::execute_multi_shard(const CommandEntry& e, std::span<const std::string_view> argv,
                                  const std::vector<uint32_t>& key_shards) {
  const uint32_t shards = server_.shard_count();
  const uint64_t seq = reserve_reply();
  const int resp = writer_.resp();
  Shard* home = &home_;
  const uint64_t conn_id = conn_id_;
  const std::string_view name = e.name;

  // Each shard's part of the command; an empty part means the shard has nothing to do.
  auto parts = std::make_shared<std::vector<std::vector<std::string>>>(shards);
  const uint64_t t0 = SystemClock::instance().monotonic_ns();
  const uint32_t index = e.index;
  // Counted once here, however many shards ran a part.
  auto complete = [home, conn_id, seq, t0, index](std::string reply) {
    const bool error = !reply.empty() && reply[0] == '-';
    home->metrics->per_command[index].record(SystemClock::instance().monotonic_ns() - t0, error);
    CommandCounters::bump(home->metrics->commands_processed);
    if (Session* s = Session::lookup(*home, conn_id)) s->complete_reply(seq, reply);
  };
  auto run_parts = [this, parts, resp, &e](std::function<void(std::vector<std::string>&)> merge) {
    const CommandEntry* entry = &e;
    server_.fan_out<std::string>(
        home_.id,
        [parts, entry, resp](Shard& s) -> std::string {
          const auto& part = (*parts)[s.id];
          if (part.empty()) return {};
          std::vector<std::string_view> av(part.begin(), part.end());
          std::string out;
          proto::ReplyWriter w(out, resp);
          run_data_command(s, *entry, av, w, /*record=*/false);
          return out;
        },
        [] { return true; }, std::move(merge));
  };
  auto first_error = [](const std::vector<std::string>& replies) -> const std::string* {
    for (const auto& r : replies) {
      if (!r.empty() && r[0] == '-') return &r;
    }
    return nullptr;
  };

  if (!key_shards.empty() && (name == "mget" || name == "del" || name == "unlink" || name == "exists" ||
                              name == "touch" || name == "mset")) {
    const size_t step = name == "mset" ? 2 : 1;
    for (size_t k = 0; k < key_shards.size(); ++k) {
      auto& part = (*parts)[key_shards[k]];
      if (part.empty()) part.emplace_back(argv[0]);
      for (size_t j = 0; j < step; ++j) part.emplace_back(argv[1 + k * step + j]);
    }
    if (name == "mget") {
      auto order = std::make_shared<std::vector<uint32_t>>(key_shards);
      run_parts([complete, order, first_error](std::vector<std::string>& replies) {
        if (const std::string* err = first_error(replies)) return complete(*err);
        std::vector<std::vector<std::string_view>> elems(replies.size());
        for (size_t s = 0; s < replies.size(); ++s) {
          if (!replies[s].empty() && !split_flat_array(replies[s], elems[s])) {
            return complete("-ERR internal error merging MGET\r\n");
          }
        }
        std::string out = "*" + std::to_string(order->size()) + "\r\n";
        std::vector<size_t> next(replies.size(), 0);
        for (uint32_t s : *order) out.append(elems[s][next[s]++]);
        complete(std::move(out));
      });
    } else if (name == "mset") {
      run_parts([complete, first_error](std::vector<std::string>& replies) {
        if (const std::string* err = first_error(replies)) return complete(*err);
        complete("+OK\r\n");
      });
    } else {
      run_parts([complete, first_error](std::vector<std::string>& replies) {
        if (const std::string* err = first_error(replies)) return complete(*err);
        int64_t sum = 0;
        for (const auto& r : replies) {
          int64_t v = 0;
          if (!r.empty() && reply_integer(r, v)) sum += v;
        }
        complete(":" + std::to_string(sum) + "\r\n");
      });
    }
    return;
  }

  if (!key_shards.empty()) {
    complete("-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    return;
  }

  // Keyless data commands address the whole keyspace.
  std::vector<std::string> whole(argv.begin(), argv.end());
  if (name == "scan") {
    uint64_t cursor = 0;
    auto [p, ec] = std::from_chars(argv[1].data(), argv[1].data() + argv[1].size(), cursor);
    if (ec != std::errc() || p != argv[1].data() + argv[1].size()) {
      complete("-ERR invalid cursor\r\n");
      return;
    }
    const uint64_t shard = cursor >> kScanShardShift;
    if (shard >= shards) {
      // A cursor from a server with more shards: finish the iteration.
      complete(resp >= 3 ? "*2\r\n$1\r\n0\r\n*0\r\n" : "*2\r\n$1\r\n0\r\n*0\r\n");
      return;
    }
    whole[1] = std::to_string(cursor & kScanInnerMask);
    (*parts)[shard] = std::move(whole);
    run_parts([complete, shard, shards](std::vector<std::string>& replies) {
      const std::string& r = replies[shard];
      if (r.empty() || r[0] != '*') return complete(r.empty() ? "-ERR internal error in SCAN\r\n" : r);
      // "*2\r\n$L\r\n<cursor>\r\n<array>"
      std::vector<std::string_view> elems;
      std::string_view rest(r);
      size_t first = rest.find("\r\n");
      size_t len_end = rest.find("\r\n", first + 2);
      int64_t clen = 0;
      std::from_chars(rest.data() + first + 3, rest.data() + len_end, clen);
      std::string_view cur = rest.substr(len_end + 2, static_cast<size_t>(clen));
      std::string_view tail = rest.substr(len_end + 2 + static_cast<size_t>(clen) + 2);
      uint64_t inner = 0;
      std::from_chars(cur.data(), cur.data() + cur.size(), inner);
      uint64_t next = 0;
      if (inner != 0) {
        next = (shard << kScanShardShift) | inner;
      } else if (shard + 1 < shards) {
        next = (shard + 1) << kScanShardShift;
      }
      std::string c = std::to_string(next);
      std::string out = "*2\r\n$" + std::to_string(c.size()) + "\r\n" + c + "\r\n";
      out.append(tail);
      complete(std::move(out));
    });
    return;
  }
  for (auto& part : *parts) part = whole;
  if (name == "dbsize") {
    run_parts([complete](std::vector<std::string>& replies) {
      int64_t sum = 0;
      for (const auto& r : replies) {
        int64_t v = 0;
        if (reply_integer(r, v)) sum += v;
      }
      complete(":" + std::to_string(sum) + "\r\n");
    });
  } else if (name == "keys") {
    run_parts([complete, first_error](std::vector<std::string>& replies) {
      if (const std::string* err = first_error(replies)) return complete(*err);
      int64_t total = 0;
      std::string body;
      for (const auto& r : replies) {
        int64_t n = 0;
        std::string_view b;
        if (array_body(r, n, b)) {
          total += n;
          body.append(b);
        }
      }
      complete("*" + std::to_string(total) + "\r\n" + body);
    });
  } else if (name == "randomkey") {
    uint64_t start = Rng(static_cast<uint64_t>(seq) ^ conn_id).uniform(shards);
    run_parts([complete, start](std::vector<std::string>& replies) {
      for (size_t i = 0; i < replies.size(); ++i) {
        const std::string& r = replies[(start + i) % replies.size()];
        if (!r.empty() && r[0] == '$' && r[1] != '-') return complete(r);
      }
      complete(replies.empty() ? "$-1\r\n" : replies[0]);
    });
  } else {
    // flushdb, flushall and any other keyless command: every shard runs it; the first reply stands
    // unless one shard failed.
    run_parts([complete, first_error](std::vector<std::string>& replies) {
      if (const std::string* err = first_error(replies)) return complete(*err);
      complete(replies.empty() ? "+OK\r\n" : replies[0]);
    });
  }
}

}  // namespace tally::server
