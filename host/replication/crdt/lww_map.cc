#include "host/replication/crdt/lww_map.h"

#include "host/common/assert.h"

namespace tally::crdt {

std::optional<std::string> LwwMap::get(const std::string& field) const {
  auto it = fields.find(field);
  if (it == fields.end()) return std::nullopt;
  return it->second.value;
}

size_t LwwMap::live_size() const {
  size_t n = 0;
  for (const auto& [f, reg] : fields) n += reg.value.has_value() ? 1 : 0;
  return n;
}

Result<LwwMap> LwwMap::assign(const std::string& field, std::optional<std::string> value,
                              Version version) {
  if (fields.count(field) == 0 && fields.size() >= kLwwMapFieldsMax) {
    return Status::exhausted("lww-map: too many fields");
  }
  LwwMap delta;
  delta.fields[field] = fields[field].assign(std::move(value), version);
  TALLY_ASSERT(fields[field].version == version);
  return delta;
}

LwwMap merge(const LwwMap& local, const LwwMap& incoming, const CrdtBugs& bugs) {
  LwwMap out = local;
  for (const auto& [field, reg] : incoming.fields) {
    auto it = out.fields.find(field);
    if (it == out.fields.end()) {
      out.fields.emplace(field, reg);
    } else {
      it->second = merge(it->second, reg, bugs);
    }
  }
  TALLY_ASSERT(out.fields.size() >= local.fields.size());
  TALLY_ASSERT(out.fields.size() >= incoming.fields.size());
  return out;
}

}  // namespace tally::crdt
