// `tallyctl wal verify` and `tallyctl wal truncate`: recovery in verify mode over every shard's log,
// and truncate_at on one.
#include "host/wal/wal_tool.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "host/wal/recovery.h"

namespace tally::wal {

namespace {

constexpr std::string_view kShardPrefix = "shard-";

std::string describe(const BadRecord& b) {
  std::string s = b.file + ":" + std::to_string(b.offset);
  s += b.group_known ? " group " + std::to_string(b.group) : " unknown group";
  return s + ": " + b.what;
}

bool parse_u64(const std::string& s, uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  return true;
}

}  // namespace

std::string shard_dir(const std::string& node_dir, uint32_t shard) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%03" PRIu32, shard);
  return join_path(join_path(node_dir, "wal"), name);
}

bool parse_position(const std::string& s, uint64_t& seq, uint64_t& offset) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  return parse_u64(s.substr(0, colon), seq) && parse_u64(s.substr(colon + 1), offset);
}

int verify_command(Env& env, const std::string& node_dir, std::string& out) {
  const std::string wal_dir = join_path(node_dir, "wal");
  auto names = env.list_dir(wal_dir);
  if (!names.is_ok()) {
    out += "cannot read " + wal_dir + ": " + names.status().to_string() + "\n";
    return kVerifyCorruption;
  }
  int code = kVerifyClean;
  int shards = 0;
  for (const std::string& name : *names) {
    if (!name.starts_with(kShardPrefix)) continue;
    ++shards;
    const std::string dir = join_path(wal_dir, name);
    auto r = recover(env, dir, RecoverMode::kVerify, [](const RecordHeader&, std::string_view) {});
    if (!r.is_ok()) {
      out += name + ": cannot read: " + r.status().to_string() + "\n";
      code = kVerifyCorruption;
      continue;
    }
    out += name + ": " + std::to_string(r->segments) + " segments, " + std::to_string(r->records) + " records, " +
           std::to_string(r->bytes) + " bytes";
    if (r->corruptions.empty() && !r->torn_tail) out += ", OK";
    if (!r->corruptions.empty()) out += ", " + std::to_string(r->corruptions.size()) + " corrupt records";
    out += "\n";
    if (r->torn_tail) {
      out += "  torn tail at ";
      out += describe(*r->torn_tail);
      out += " (tallyd truncates it at start)\n";
      code = std::max(code, kVerifyTornTail);
    }
    for (const BadRecord& b : r->corruptions) {
      out += "  corruption at ";
      out += describe(b);
      out += "\n";
    }
    if (r->unknown_group) {
      out += "  unavailable: every partition of this shard (a damaged header hides its record's partition)\n";
      code = kVerifyCorruption;
    }
    if (!r->unavailable.empty()) {
      out += "  unavailable groups:";
      for (const auto& [group, bad] : r->unavailable) {
        out += ' ';
        out += std::to_string(group);
      }
      out += "\n";
      code = kVerifyCorruption;
    }
    if (!r->corruptions.empty()) code = kVerifyCorruption;
  }
  if (shards == 0) out += wal_dir + ": no shard logs\n";
  return code;
}

int truncate_command(Env& env, const std::string& node_dir, uint32_t shard, const std::string& at, std::string& out) {
  uint64_t seq = 0, offset = 0;
  if (!parse_position(at, seq, offset)) {
    out += "bad position '" + at + "': SEQ:OFFSET expected\n";
    return 2;
  }
  const std::string dir = shard_dir(node_dir, shard);
  auto dropped = truncate_at(env, dir, seq, offset);
  if (!dropped.is_ok()) {
    out += "cannot truncate " + dir + ": " + dropped.status().to_string() + "\n";
    return 2;
  }
  out += dir + ": cut at segment " + std::to_string(seq) + " offset " + std::to_string(offset) + ", " +
         std::to_string(*dropped) + " records dropped\n";
  return 0;
}

}  // namespace tally::wal
