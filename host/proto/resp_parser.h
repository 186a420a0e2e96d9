// RespParser: incremental, zero-copy parser of client requests in RESP multibulk and inline form.
// One parser per connection; not thread-safe. Keeps offsets of the parsed prefix so input is scanned once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/proto/command.h"

namespace tally::proto {

// Bounds on what one request may make the server hold. Before authentication the unauth_* bounds
// apply, so an unauthenticated client cannot make the server buffer more than about
// unauth_max_multibulk * unauth_max_bulk_bytes + max_inline_bytes bytes (the CVE-2021-32675 class).
struct RespLimits {
  size_t max_bulk_bytes = 512u << 20;       // Redis proto-max-bulk-len
  size_t max_multibulk = 1024 * 1024;       // arguments in one multibulk request
  size_t max_inline_bytes = 64 * 1024;      // an inline request line, and any RESP header line
  size_t unauth_max_multibulk = 10;
  size_t unauth_max_bulk_bytes = 16384;
};

enum class ParseStatus { kOk, kIncomplete, kError };

class RespParser {
 public:
  explicit RespParser(RespLimits limits = {});

  // Before authentication the unauth_* limits apply. Takes effect at the next header line parsed.
  void set_authenticated(bool yes) { authenticated_ = yes; }
  bool authenticated() const { return authenticated_; }

  // `buf` begins at the first unconsumed byte of the connection's input; between calls the caller may
  // only append to it (same start; the bytes may move, the parser keeps offsets, never pointers).
  // kOk: out.argv holds views into buf (inline arguments with quotes or escapes point into the
  //   parser's scratch space instead); all views stay valid until the next parse()/reset().
  //   consumed() bytes (skipped empty commands included) form the command: drop them, then reset().
  // kIncomplete: more bytes are needed. consumed() is 0, or the length of a prefix that held only
  //   empty commands (blank inline lines, *0, *-1): drop it; the parser then starts afresh.
  // kError: error() holds the reply text; protocol errors cannot be resynchronised: reply and close.
  ParseStatus parse(std::string_view buf, Command& out);

  size_t consumed() const { return consumed_; }
  // On kError: the error reply without '-' and CRLF, e.g. "ERR Protocol error: invalid bulk length";
  // a length refused only by an unauth_* bound gives Redis 7's "... unauthenticated bulk length".
  const std::string& error() const { return error_; }
  // On kIncomplete: a lower bound of the total bytes (from buf's start) the command needs, so the
  // caller can reserve once; a large bulk's full size is known once its $len line arrived.
  size_t bytes_needed_hint() const { return needed_hint_; }
  // Forgets partial progress; call after dropping consumed() bytes of a kOk command.
  void reset();

 private:
  // A bulk argument's place in the input, as offsets so the caller may move the buffer.
  struct ArgSpan {
    size_t offset;
    size_t length;
  };
  // kStart: between commands; kCount: reading "*N"; kBulkHeader/kBulkData: reading "$len" and its
  // bytes; kInline: waiting for an inline line's '\n'; kDone: a command or an error was returned.
  enum class Mode : uint8_t { kStart, kInline, kCount, kBulkHeader, kBulkData, kDone };
  enum class LineResult : uint8_t { kFound, kIncomplete, kError };

  ParseStatus parse_multibulk(std::string_view buf, Command& out);
  ParseStatus parse_inline(std::string_view buf, Command& out);
  // Finds the CRLF ending the header line that starts at pos_, resuming the search where it stopped.
  // kFound sets `end` to the index of its '\r'; kError has set error_.
  LineResult find_line_end(std::string_view buf, const char* too_big_error, const char* bad_error,
                           size_t& end);
  // Fast path for a complete short numeric header line at pos_; false means "use find_line_end".
  bool short_line_end(std::string_view buf, size_t& end) const;
  ParseStatus fail(const char* text);
  ParseStatus fail_expected_dollar(char got);
  size_t max_multibulk() const;
  size_t max_bulk_bytes() const;

  RespLimits limits_;
  bool authenticated_ = false;
  Mode mode_ = Mode::kStart;
  size_t pos_ = 0;          // first byte not yet parsed, relative to buf's start
  size_t scan_from_ = 0;    // where the search for the current line's terminator resumes
  size_t skipped_ = 0;      // leading bytes of empty commands skipped in this call
  size_t args_left_ = 0;    // multibulk arguments still to read
  int64_t bulk_bytes_ = -1; // length of the bulk being read, -1 while its $ line is pending
  size_t consumed_ = 0;
  size_t needed_hint_ = 0;
  std::vector<ArgSpan> spans_;
  std::string scratch_;     // unescaped inline arguments; reserved before use so views stay put
  std::string error_;
};

// Parses a decimal integer the way Redis's string2ll does: optional '-', no '+', no leading zeros,
// no spaces, no overflow. Returns false when `s` is not such a number.
bool parse_strict_int64(std::string_view s, int64_t& value);

enum class SplitResult { kOk, kUnbalancedQuotes, kTooManyArgs };

// Splits an inline request line like redis-cli writes it: whitespace-separated, "..." with \n \r \t
// \b \a \\ \" and \xHH escapes, '...' with \' escapes; a closing quote must end the argument.
// Arguments without quotes are views into `line`; others are appended to `scratch`, which must have
// spare capacity for line.size() bytes so earlier views stay valid. Appends at most max_args views.
SplitResult split_inline_args(std::string_view line, std::string& scratch,
                              std::vector<std::string_view>& argv, size_t max_args);

}  // namespace tally::proto
