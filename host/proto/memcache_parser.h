// McParser: incremental, zero-copy parser of memcached text-protocol and meta-protocol requests.
// One parser per connection; not thread-safe. Views point into the caller's buffer, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/proto/resp_parser.h"  // ParseStatus

namespace tally::proto {

enum class McOp : uint8_t {
  kNone,
  // Retrieval: keys holds 1..max_keys_per_get keys; gat/gats also carry exptime.
  kGet, kGets, kGat, kGats,
  // Storage: one key, client_flags, exptime, value_bytes, value; cas also cas_unique.
  kSet, kAdd, kReplace, kAppend, kPrepend, kCas,
  kDelete,              // one key
  kIncr, kDecr,         // one key, delta
  kTouch,               // one key, exptime
  kFlushAll,            // exptime = delay in seconds (0 when absent)
  kVersion, kQuit,
  kStats,               // keys holds the optional arguments ("items", "slabs", ...)
  kVerbosity,           // verbosity
  // Meta commands: one key (none for mn), meta_flags in order; ms also value_bytes and value.
  kMetaGet, kMetaSet, kMetaDelete, kMetaNoop, kMetaArithmetic,
};

// One meta flag: its letter and the rest of its word ("T30" is {'T', "30"}, "v" is {'v', ""}).
struct McMetaFlag {
  char flag = 0;
  std::string_view token;
};

// A parsed request. Views point into the buffer given to parse(); they stay valid until the caller
// drops the consumed() bytes. Fields an op does not use keep their cleared values.
struct McRequest {
  McOp op = McOp::kNone;
  std::vector<std::string_view> keys;  // see McOp; raw bytes as sent (base64 text when key_base64)
  uint32_t client_flags = 0;           // storage: the opaque 32-bit flags stored with the item
  int64_t exptime = 0;                 // storage, touch, gat, gats; flush_all: delay
  uint64_t value_bytes = 0;            // storage and ms: the data block's length
  uint64_t cas_unique = 0;             // cas
  uint64_t delta = 0;                  // incr, decr
  uint32_t verbosity = 0;              // verbosity
  bool noreply = false;                // text commands ending in "noreply": send no reply
  std::string_view value;              // storage and ms: the data block without its CRLF
  std::vector<McMetaFlag> meta_flags;  // meta: every flag in the order sent, at most max_meta_flags
  std::string_view opaque;             // meta 'O' token, echoed back in the reply
  bool quiet = false;                  // meta 'q': suppress the common-case reply (HD, EN, NF)
  bool key_base64 = false;             // meta 'b': the key is base64; the server decodes it

  std::string_view key() const { return keys.empty() ? std::string_view() : keys[0]; }
  // The meta flag with letter f, or nullptr.
  const McMetaFlag* find_flag(char f) const;
  void clear();
};

struct McLimits {
  size_t max_key_bytes = 250;                // memcached's KEY_MAX_LENGTH
  size_t max_value_bytes = 1u << 20;         // memcached's default item size max (-I 1m)
  size_t max_keys_per_get = 1024;            // keys in one get/gets/gat/gats line
  size_t max_line_bytes = 2048;              // any command line except retrievals
  size_t max_get_line_bytes = 256 * 1024;    // get/gets/gat/gats lines (many keys)
  size_t max_meta_flags = 32;                // flags on one meta command
  size_t max_opaque_bytes = 32;              // meta 'O' token, as memcached bounds it
};

// Parses one request per call. Contract: after every call, whatever it returned, the caller drops the
// first consumed() bytes of buf; otherwise it may only append to buf between calls.
//   kOk: `out` holds the request (command line and data block, consumed() bytes in all).
//   kIncomplete: more bytes needed; consumed() > 0 only while the rest of a rejected data block is
//     being swallowed. bytes_needed_hint() is a lower bound of the bytes the request needs.
//   kError: reply error() (e.g. "CLIENT_ERROR bad data chunk"); out.noreply tells whether the line
//     asked for no reply (memcached then suppresses the error too, except for closing errors). When error_closes(), close after the
//     reply: the stream cannot be resynchronised. Otherwise keep parsing: the bad line (and its data
//     block, swallowed over the following calls when not yet here) is consumed.
// Errors and whether they resynchronise (docs/protocols.md has the full table):
//   "ERROR"                                     unknown command or wrong word count; resync (a
//                                               storage line's data block is swallowed when its
//                                               length was readable).
//   "CLIENT_ERROR bad command line format"      bad key/flags/exptime/cas/meta flag; resync, data
//                                               block swallowed when the length was readable.
//   "CLIENT_ERROR bad command line format"      storage or ms line whose length word cannot be
//                                               read: close (the data block cannot be found).
//   "CLIENT_ERROR bad data chunk"               data block not followed by CRLF: bytes+2 consumed
//                                               as memcached does, resync.
//   "SERVER_ERROR object too large for cache"   value over max_value_bytes: data swallowed, resync.
//   "CLIENT_ERROR line too long"                no '\n' within the line bound: close.
//   "CLIENT_ERROR invalid exptime argument", "CLIENT_ERROR invalid numeric delta argument",
//   "CLIENT_ERROR invalid flag", "CLIENT_ERROR duplicate flag", "CLIENT_ERROR opaque token too long",
//   "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]": resync.
class McParser {
 public:
  explicit McParser(McLimits limits = {});

  ParseStatus parse(std::string_view buf, McRequest& out);
  size_t consumed() const { return consumed_; }
  const std::string& error() const { return error_; }
  bool error_closes() const { return error_closes_; }
  size_t bytes_needed_hint() const { return needed_hint_; }
  // Forgets partial progress (not a pending swallow). parse() calls it itself after kOk and kError.
  void reset();
  const McLimits& limits() const { return limits_; }

 private:
  enum class LineResult : uint8_t { kRequest, kNeedsData, kError };

  // Parses a complete command line (without its line terminator) into `out`.
  LineResult parse_line(std::string_view line, McRequest& out);
  LineResult parse_storage(McRequest& out);
  LineResult parse_meta(McRequest& out, size_t first_flag);
  LineResult line_error(const char* text, bool closes);
  bool tokenize(std::string_view line);

  McLimits limits_;
  size_t scan_from_ = 0;      // where the search for '\n' resumes, relative to the request start
  uint64_t swallow_left_ = 0; // bytes of a rejected data block still to discard
  uint64_t data_bytes_ = 0;   // on kNeedsData: the data block's length (CRLF excluded)
  uint64_t swallow_after_error_ = 0;  // on a resynchronising error: data block bytes to discard
  size_t waiting_total_ = 0;  // line and data block bytes awaited, 0 when no data block is awaited
  size_t consumed_ = 0;
  size_t needed_hint_ = 0;
  bool error_closes_ = false;
  std::vector<std::string_view> tokens_;
  std::string error_;
};

}  // namespace tally::proto
