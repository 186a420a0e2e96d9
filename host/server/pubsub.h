// Publish/subscribe. Each shard keeps the channels and patterns its own sessions subscribe to; PUBLISH
// goes to every shard, each delivers to its subscribers and counts them, and the publisher gets the sum.
// Messages are pushes written straight into subscribers' output: a subscriber that cannot keep up
// reaches the output limit (client_output_limit) and is disconnected, never the server. Shard channels
// (SSUBSCRIBE/SPUBLISH) are a separate namespace handled the same way. Delivery is to this node's
// subscribers: in a multi-node cluster PUBLISH does not yet reach other members.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "host/store/containers.h"

namespace tally::server {

class Session;
struct Shard;

class PubSubRegistry {
 public:
  enum Kind : uint8_t { kChannel = 0, kPattern = 1, kShardChannel = 2 };
  void add(Kind k, std::string_view name, uint64_t conn_id);
  void remove(Kind k, std::string_view name, uint64_t conn_id);
  // Delivers `message` on `channel` (kChannel: also to matching patterns; kShardChannel: shard
  // subscribers only) to this shard's sessions; returns how many received it.
  uint64_t publish(Shard& shard, bool shard_channel, std::string_view channel, std::string_view message);
  // PUBSUB figures of this shard.
  void channels(Kind k, std::string_view pattern, std::vector<std::string>& out) const;
  uint64_t subscribers(Kind k, std::string_view channel) const;
  uint64_t patterns() const { return by_name_[kPattern].size(); }

 private:
  using Map = std::unordered_map<std::string, std::vector<uint64_t>, store::StringHash, std::equal_to<>>;
  Map by_name_[3];
};

// Session handlers: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
// PUBLISH, SPUBLISH, PUBSUB.
void cmd_pubsub(Session& s, std::span<const std::string_view> argv);

}  // namespace tally::server
