// Encoders for memcached text-protocol and meta-protocol replies, appending to an output buffer.
// Plain functions over std::string: no state, no allocation beyond the buffer's own growth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tally::proto {

// One-line replies of the text protocol.
enum class McStatus : uint8_t { kStored, kNotStored, kExists, kNotFound, kDeleted, kTouched, kOk, kEnd };

void mc_status(std::string& out, McStatus status);
// "VALUE <key> <flags> <bytes>\r\n<data>\r\n" (get, gat); mc_value_cas adds " <cas>" (gets, gats).
void mc_value(std::string& out, std::string_view key, uint32_t client_flags, std::string_view data);
void mc_value_cas(std::string& out, std::string_view key, uint32_t client_flags, std::string_view data,
                  uint64_t cas_unique);
void mc_end(std::string& out);
void mc_number(std::string& out, uint64_t value);           // incr/decr result
void mc_error(std::string& out, std::string_view text);     // "ERROR", "CLIENT_ERROR ...", ...
void mc_stat(std::string& out, std::string_view name, std::string_view value);
void mc_stat(std::string& out, std::string_view name, uint64_t value);
void mc_version(std::string& out, std::string_view version);

// Return flags of a meta reply (" k<key> c<cas> t<ttl> O<opaque> ..."), formatted into a fixed
// buffer. A flag that would overflow it, or whose token holds a space, CR or LF, is refused: add()
// returns false and ok() turns false, so the caller can answer with an error instead.
class McMetaFlags {
 public:
  // Room for a base64 key of a 250-byte key, an opaque token and a dozen numeric flags.
  static constexpr size_t kBytesMax = 640;

  bool add(char flag);
  bool add(char flag, std::string_view token);
  bool add(char flag, uint64_t value);
  bool add_signed(char flag, int64_t value);
  std::string_view str() const { return std::string_view(buf_, len_); }
  bool ok() const { return ok_; }
  void clear() {
    len_ = 0;
    ok_ = true;
  }

 private:
  char buf_[kBytesMax];
  size_t len_ = 0;
  bool ok_ = true;
};

enum class McMetaCode : uint8_t { kHD, kEN, kNF, kNS, kEX, kMN };

// "HD <flags>\r\n" and friends; MN carries no flags (pass an empty set where memcached sends none).
void mc_meta_status(std::string& out, McMetaCode code, const McMetaFlags& flags);
// "VA <bytes> <flags>\r\n<data>\r\n"
void mc_meta_value(std::string& out, std::string_view data, const McMetaFlags& flags);

}  // namespace tally::proto
