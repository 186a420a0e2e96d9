// Publish/subscribe: the per-shard registry and the commands. See pubsub.h.
#include "host/server/pubsub.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

#include "host/server/cluster_node.h"
#include "host/server/commands/util.h"
#include "host/server/server.h"
#include "host/server/session.h"
#include "host/store/glob.h"

namespace tally::server {

using cmd::iequals;

namespace {

using Kind = PubSubRegistry::Kind;

// What each shard contributes to a PUBLISH or PUBSUB answer, gathered under a lock.
struct Gather {
  std::mutex mu;
  size_t left = 0;
  uint64_t count = 0;
  std::vector<std::string> names;
  std::vector<uint64_t> per_name;
};

// Runs `part` on every shard (on its thread), then `finish` on the session's shard with the gathered
// result, completing reply place `seq`.
void on_every_shard(Session& s, std::function<void(Shard&, Gather&)> part,
                    std::function<void(Gather&, proto::Reply&)> finish) {
  Server& srv = s.server();
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  auto g = std::make_shared<Gather>();
  g->left = srv.shard_count();
  auto shared_part = std::make_shared<std::function<void(Shard&, Gather&)>>(std::move(part));
  auto shared_finish = std::make_shared<std::function<void(Gather&, proto::Reply&)>>(std::move(finish));
  for (uint32_t i = 0; i < srv.shard_count(); ++i) {
    Shard* sh = &srv.shard(i);
    sh->reactor->post([sh, home, conn_id, seq, g, shared_part, shared_finish] {
      bool last = false;
      {
        std::lock_guard<std::mutex> lock(g->mu);
        (*shared_part)(*sh, *g);
        last = --g->left == 0;
      }
      if (!last) return;
      home->reactor->post([home, conn_id, seq, g, shared_finish] {
        proto::Reply r;
        (*shared_finish)(*g, r);
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, r);
      });
    });
  }
}

void confirm(Session& s, std::string_view what, const std::string* name, size_t count) {
  proto::Reply r;
  r.push(3);
  r.bulk(what);
  name != nullptr ? r.bulk(*name) : r.null();
  r.integer(static_cast<int64_t>(count));
  s.push_message(r);
}

void subscribe(Session& s, Kind k, std::string_view what, std::span<const std::string_view> names) {
  for (std::string_view n : names) {
    if (s.subscriptions(k).emplace(n).second) s.home().pubsub.add(k, n, s.conn().id());
    const std::string name(n);
    confirm(s, what, &name, s.subscription_count());
  }
}

void unsubscribe(Session& s, Kind k, std::string_view what, std::span<const std::string_view> names) {
  std::set<std::string>& subs = s.subscriptions(k);
  std::vector<std::string> targets(names.begin(), names.end());
  if (targets.empty()) targets.assign(subs.begin(), subs.end());
  if (targets.empty()) {
    confirm(s, what, nullptr, s.subscription_count());
    return;
  }
  for (const std::string& n : targets) {
    if (subs.erase(n) > 0) s.home().pubsub.remove(k, n, s.conn().id());
    confirm(s, what, &n, s.subscription_count());
  }
}

void publish(Session& s, bool shard_channel, std::string_view channel, std::string_view message) {
  // A cluster member hands PUBLISH to the other members too; the reply counts this node's receivers,
  // as in Redis Cluster. (SPUBLISH stays on the node: its channel's slot is served here.)
  if (!shard_channel) {
    if (ClusterNode* cn = s.server().cluster_node(); cn != nullptr && cn->membership() != nullptr) {
      cn->broadcast_publish(std::string(channel), std::string(message));
    }
  }
  if (s.server().shard_count() == 1) {
    s.out().integer(static_cast<int64_t>(s.home().pubsub.publish(s.home(), shard_channel, channel, message)));
    return;
  }
  on_every_shard(
      s,
      [shard_channel, ch = std::string(channel), msg = std::string(message)](Shard& sh, Gather& g) {
        g.count += sh.pubsub.publish(sh, shard_channel, ch, msg);
      },
      [](Gather& g, proto::Reply& r) { r.integer(static_cast<int64_t>(g.count)); });
}

void pubsub_info(Session& s, std::span<const std::string_view> argv) {
  const std::string_view sub = argv[1];
  const bool shard = iequals(sub, "shardchannels") || iequals(sub, "shardnumsub");
  const Kind k = shard ? PubSubRegistry::kShardChannel : PubSubRegistry::kChannel;
  if (iequals(sub, "channels") || iequals(sub, "shardchannels")) {
    if (argv.size() > 3) return s.out().error("ERR wrong number of arguments for 'pubsub|" + cmd::lower_ascii(sub) + "' command");
    const std::string pattern = argv.size() == 3 ? std::string(argv[2]) : std::string();
    on_every_shard(
        s, [k, pattern](Shard& sh, Gather& g) { sh.pubsub.channels(k, pattern, g.names); },
        [](Gather& g, proto::Reply& r) {
          std::sort(g.names.begin(), g.names.end());
          g.names.erase(std::unique(g.names.begin(), g.names.end()), g.names.end());
          r.array(g.names.size());
          for (const std::string& n : g.names) r.bulk(n);
        });
  } else if (iequals(sub, "numsub") || iequals(sub, "shardnumsub")) {
    std::vector<std::string> names(argv.begin() + 2, argv.end());
    on_every_shard(
        s,
        [k, names](Shard& sh, Gather& g) {
          if (g.per_name.empty()) g.per_name.assign(names.size(), 0);
          for (size_t i = 0; i < names.size(); ++i) g.per_name[i] += sh.pubsub.subscribers(k, names[i]);
        },
        [names](Gather& g, proto::Reply& r) {
          g.per_name.resize(names.size(), 0);
          r.map(names.size());
          for (size_t i = 0; i < names.size(); ++i) {
            r.bulk(names[i]);
            r.integer(static_cast<int64_t>(g.per_name[i]));
          }
        });
  } else if (iequals(sub, "numpat") && argv.size() == 2) {
    on_every_shard(
        s, [](Shard& sh, Gather& g) { g.count += sh.pubsub.patterns(); },
        [](Gather& g, proto::Reply& r) { r.integer(static_cast<int64_t>(g.count)); });
  } else {
    s.out().error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) +
                  "'. Try PUBSUB HELP.");
  }
}

}  // namespace

void PubSubRegistry::add(Kind k, std::string_view name, uint64_t conn_id) {
  auto it = by_name_[k].find(name);
  if (it == by_name_[k].end()) it = by_name_[k].emplace(std::string(name), std::vector<uint64_t>{}).first;
  it->second.push_back(conn_id);
}

void PubSubRegistry::remove(Kind k, std::string_view name, uint64_t conn_id) {
  auto it = by_name_[k].find(name);
  if (it == by_name_[k].end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), conn_id), v.end());
  if (v.empty()) by_name_[k].erase(it);
}

uint64_t PubSubRegistry::publish(Shard& shard, bool shard_channel, std::string_view channel,
                                 std::string_view message) {
  uint64_t n = 0;
  proto::Reply r;
  auto deliver = [&](uint64_t conn_id) {
    if (Session* s = Session::lookup(shard, conn_id)) {
      s->push_message(r);
      ++n;
    }
  };
  const Kind k = shard_channel ? kShardChannel : kChannel;
  if (auto it = by_name_[k].find(channel); it != by_name_[k].end()) {
    r.push(3);
    r.bulk(shard_channel ? "smessage" : "message");
    r.bulk(channel);
    r.bulk(message);
    const std::vector<uint64_t> ids = it->second;  // a delivery may close a session (output limit)
    for (uint64_t id : ids) deliver(id);
  }
  if (!shard_channel) {
    for (const auto& [pattern, ids] : by_name_[kPattern]) {
      if (!store::glob_match(pattern, channel)) continue;
      r.clear();
      r.push(4);
      r.bulk("pmessage");
      r.bulk(pattern);
      r.bulk(channel);
      r.bulk(message);
      const std::vector<uint64_t> copy = ids;
      for (uint64_t id : copy) deliver(id);
    }
  }
  return n;
}

void PubSubRegistry::channels(Kind k, std::string_view pattern, std::vector<std::string>& out) const {
  for (const auto& [name, ids] : by_name_[k]) {
    if (pattern.empty() || store::glob_match(pattern, name)) out.push_back(name);
  }
}

uint64_t PubSubRegistry::subscribers(Kind k, std::string_view channel) const {
  auto it = by_name_[k].find(channel);
  return it == by_name_[k].end() ? 0 : it->second.size();
}

void cmd_pubsub(Session& s, std::span<const std::string_view> argv) {
  const std::string_view name = argv[0];
  auto rest = argv.subspan(1);
  if (iequals(name, "subscribe")) return subscribe(s, PubSubRegistry::kChannel, "subscribe", rest);
  if (iequals(name, "psubscribe")) return subscribe(s, PubSubRegistry::kPattern, "psubscribe", rest);
  if (iequals(name, "ssubscribe")) return subscribe(s, PubSubRegistry::kShardChannel, "ssubscribe", rest);
  if (iequals(name, "unsubscribe")) return unsubscribe(s, PubSubRegistry::kChannel, "unsubscribe", rest);
  if (iequals(name, "punsubscribe")) return unsubscribe(s, PubSubRegistry::kPattern, "punsubscribe", rest);
  if (iequals(name, "sunsubscribe")) return unsubscribe(s, PubSubRegistry::kShardChannel, "sunsubscribe", rest);
  if (iequals(name, "publish")) return publish(s, false, argv[1], argv[2]);
  if (iequals(name, "spublish")) return publish(s, true, argv[1], argv[2]);
  return pubsub_info(s, argv);
}

}  // namespace tally::server
