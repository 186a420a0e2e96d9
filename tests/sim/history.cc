#include "tests/sim/history.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace tally::sim {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kRead: return "read";
    case OpKind::kWrite: return "write";
    case OpKind::kCas: return "cas";
    case OpKind::kIncr: return "incr";
  }
  TALLY_UNREACHABLE();
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kFail: return "fail";
    case Outcome::kUnknown: return "unknown";
  }
  TALLY_UNREACHABLE();
}

namespace {

void append_int(std::string& out, const std::optional<int64_t>& v) {
  out += v ? std::to_string(*v) : "null";
}

// Keys are written as JSON strings; only '"' and '\\' need escaping in the keys we generate,
// control characters are written as \u00XX.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// A cursor over one flat JSON object: string keys, values that are strings, integers or null.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_ws();
    return pos_ == s_.size();
  }
  bool peek_is(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  Result<std::string> string() {
    if (!eat('"')) return Status::invalid("history: expected a string at byte " + std::to_string(pos_));
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) break;
        char e = s_[pos_++];
        if (e == 'u') {
          if (pos_ + 4 > s_.size()) return Status::invalid("history: short \\u escape");
          out += static_cast<char>(std::stoi(std::string(s_.substr(pos_, 4)), nullptr, 16));
          pos_ += 4;
        } else {
          out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
        }
      } else {
        out += c;
      }
    }
    if (!eat('"')) return Status::invalid("history: unterminated string");
    return out;
  }
  // An integer or null.
  Result<std::optional<int64_t>> nullable_int() {
    skip_ws();
    if (s_.substr(pos_, 4) == "null") {
      pos_ += 4;
      return std::optional<int64_t>();
    }
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == start || (pos_ == start + 1 && s_[start] == '-')) {
      return Status::invalid("history: expected an integer at byte " + std::to_string(start));
    }
    errno = 0;
    const std::string digits(s_.substr(start, pos_ - start));
    const long long v = std::strtoll(digits.c_str(), nullptr, 10);
    if (errno == ERANGE) return Status::invalid("history: integer out of range: " + digits);
    return std::optional<int64_t>(v);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::string to_json_line(const Operation& op) {
  std::string out;
  out.reserve(160);
  out += "{\"client\":" + std::to_string(op.client) + ",\"key\":";
  append_string(out, op.key);
  out += ",\"op\":\"";
  out += op_kind_name(op.op);
  out += "\",\"arg\":";
  append_int(out, op.arg);
  out += ",\"expect\":";
  append_int(out, op.expect);
  out += ",\"result\":";
  append_int(out, op.result);
  out += ",\"call\":" + std::to_string(op.call_ns) + ",\"return\":" + std::to_string(op.return_ns);
  out += ",\"outcome\":\"";
  out += outcome_name(op.outcome);
  out += "\"}";
  return out;
}

Result<Operation> parse_json_line(std::string_view line) {
  if (line.size() > kHistoryLineBytesMax) return Status::invalid("history: line too long");
  Cursor c(line);
  Operation op;
  if (!c.eat('{')) return Status::invalid("history: expected '{'");
  bool seen_op = false, seen_key = false, seen_call = false, seen_outcome = false;
  // A bounded field loop: an object has at most this many members.
  constexpr int kFieldsMax = 16;
  for (int i = 0; i < kFieldsMax && !c.peek_is('}'); ++i) {
    if (i > 0 && !c.eat(',')) return Status::invalid("history: expected ','");
    Result<std::string> name = c.string();
    if (!name.is_ok()) return name.status();
    if (!c.eat(':')) return Status::invalid("history: expected ':'");
    const std::string& n = *name;
    if (n == "key" || n == "op" || n == "outcome") {
      Result<std::string> v = c.string();
      if (!v.is_ok()) return v.status();
      if (n == "key") {
        op.key = *v;
        seen_key = true;
      } else if (n == "op") {
        seen_op = true;
        if (*v == "read") op.op = OpKind::kRead;
        else if (*v == "write") op.op = OpKind::kWrite;
        else if (*v == "cas") op.op = OpKind::kCas;
        else if (*v == "incr") op.op = OpKind::kIncr;
        else return Status::invalid("history: unknown op " + *v);
      } else {
        seen_outcome = true;
        if (*v == "ok") op.outcome = Outcome::kOk;
        else if (*v == "fail") op.outcome = Outcome::kFail;
        else if (*v == "unknown") op.outcome = Outcome::kUnknown;
        else return Status::invalid("history: unknown outcome " + *v);
      }
      continue;
    }
    Result<std::optional<int64_t>> v = c.nullable_int();
    if (!v.is_ok()) return v.status();
    if (n == "arg") op.arg = *v;
    else if (n == "expect") op.expect = *v;
    else if (n == "result") op.result = *v;
    else if (n == "client" || n == "call" || n == "return") {
      if (!v->has_value() || **v < 0) return Status::invalid("history: " + n + " must be a non-negative integer");
      const uint64_t u = static_cast<uint64_t>(**v);
      if (n == "client") op.client = static_cast<uint32_t>(u);
      else if (n == "call") op.call_ns = u, seen_call = true;
      else op.return_ns = u;
    } else {
      return Status::invalid("history: unknown field " + n);
    }
  }
  if (!c.eat('}') || !c.at_end()) return Status::invalid("history: expected '}' at end of line");
  if (!seen_op || !seen_key || !seen_call || !seen_outcome) {
    return Status::invalid("history: missing one of key, op, call, outcome");
  }
  if (op.outcome != Outcome::kUnknown && op.return_ns < op.call_ns) {
    return Status::invalid("history: return before call");
  }
  if (op.op != OpKind::kRead && !op.arg) return Status::invalid("history: write, cas and incr need arg");
  return op;
}

Status write_history(const std::string& path, const std::vector<Operation>& ops) {
  TALLY_ASSERT(ops.size() <= kHistoryOpsMax);
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status::io_error("history: cannot open " + path);
  for (const Operation& op : ops) out << to_json_line(op) << '\n';
  out.flush();
  if (!out) return Status::io_error("history: write failed on " + path);
  return Status::ok();
}

Result<std::vector<Operation>> read_history(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::io_error("history: cannot open " + path);
  std::vector<Operation> ops;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    if (ops.size() >= kHistoryOpsMax) return Status::exhausted("history: too many operations");
    Result<Operation> op = parse_json_line(line);
    if (!op.is_ok()) return Status::invalid(op.status().message() + " (line " + std::to_string(line_no) + ")");
    ops.push_back(std::move(op).value());
  }
  return ops;
}

}  // namespace tally::sim
