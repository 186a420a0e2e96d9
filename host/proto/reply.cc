#include "host/proto/reply.h"

#include <algorithm>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tally::proto {

void ReplyWriter::header(char type, int64_t n) {
  char buf[24];
  buf[0] = type;
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n);
  *p++ = '\r';
  *p++ = '\n';
  out_->append(buf, static_cast<size_t>(p - buf));
}

void ReplyWriter::simple(std::string_view s) {
  out_->push_back('+');
  out_->append(s);
  out_->append("\r\n", 2);
}

void ReplyWriter::error(std::string_view msg) {
  out_->push_back('-');
  // An error line cannot carry CR or LF; replace them so the stream stays in sync.
  for (char c : msg) out_->push_back((c == '\r' || c == '\n') ? ' ' : c);
  out_->append("\r\n", 2);
}

void ReplyWriter::integer(int64_t v) { header(':', v); }

void ReplyWriter::bulk(std::string_view s) {
  header('$', static_cast<int64_t>(s.size()));
  out_->append(s);
  out_->append("\r\n", 2);
}

void ReplyWriter::null() {
  if (resp_ >= 3) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("$-1\r\n", 5);
  }
}

void ReplyWriter::null_array() {
  if (resp_ >= 3) {
    out_->append("_\r\n", 3);
  } else {
    out_->append("*-1\r\n", 5);
  }
}

void ReplyWriter::array(size_t n) { header('*', static_cast<int64_t>(n)); }
void ReplyWriter::map(size_t n) {
  if (resp_ >= 3) {
    header('%', static_cast<int64_t>(n));
  } else {
    header('*', static_cast<int64_t>(2 * n));
  }
}
void ReplyWriter::set(size_t n) { header(resp_ >= 3 ? '~' : '*', static_cast<int64_t>(n)); }
void ReplyWriter::push(size_t n) { header(resp_ >= 3 ? '>' : '*', static_cast<int64_t>(n)); }

void ReplyWriter::dbl(double v) {
  std::string s = format_double(v);
  if (resp_ >= 3) {
    out_->push_back(',');
    out_->append(s);
    out_->append("\r\n", 2);
  } else {
    bulk(s);
  }
}

void ReplyWriter::boolean(bool v) {
  if (resp_ >= 3) {
    out_->append(v ? "#t\r\n" : "#f\r\n", 4);
  } else {
    integer(v ? 1 : 0);
  }
}

void ReplyWriter::verbatim(std::string_view s) {
  if (resp_ >= 3) {
    header('=', static_cast<int64_t>(s.size() + 4));
    out_->append("txt:", 4);
    out_->append(s);
    out_->append("\r\n", 2);
  } else {
    bulk(s);
  }
}

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // The shortest digits that round-trip, laid out as %.17g lays them out (Redis's choice): plain
  // notation for exponents -4 to 16, scientific otherwise (1000000 stays "1000000", 1e20 is "1e+20").
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const char* e = std::find(buf, p, 'e');
  int exp = 0;
  if (e != p) std::from_chars(e + 1 + (e[1] == '+' ? 1 : 0), p, exp);  // buf is not NUL-terminated
  if (exp < -4 || exp >= 17) return std::string(buf, p);
  auto [q, ec2] = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  return std::string(buf, q);
}

}  // namespace tally::proto
