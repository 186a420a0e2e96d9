// Bit commands on string values (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP), with redis-server 7's
// replies and errors. Bit 0 is the most significant bit of byte 0; writing past the end grows the
// string with zero bytes, up to the 512 MiB string limit.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ValueType;

constexpr uint64_t kBitOffsetMax = (store::Store::kStringBytesMax << 3) - 1;
constexpr std::string_view kErrBitOffset = "ERR bit offset is not an integer or out of range";

bool parse_bit_offset(std::string_view s, uint64_t& out) {
  int64_t v = 0;
  if (!parse_i64(s, v) || v < 0 || static_cast<uint64_t>(v) > kBitOffsetMax) return false;
  out = static_cast<uint64_t>(v);
  return true;
}

bool bit_at(std::string_view v, uint64_t bit) {
  return (static_cast<unsigned char>(v[bit >> 3]) >> (7 - (bit & 7))) & 1;
}

// Redis's start/end clamping over a length (bytes or bits); false when the range is empty.
bool clamp(int64_t& start, int64_t& end, int64_t len) {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  return start <= end;
}

// Set bits in [first, last] (bit positions, inclusive).
uint64_t count_bits(std::string_view v, uint64_t first, uint64_t last) {
  uint64_t n = 0;
  while (first <= last && (first & 7) != 0) n += bit_at(v, first++);
  while (first + 63 <= last) {
    uint64_t w;
    std::memcpy(&w, v.data() + (first >> 3), 8);
    n += static_cast<uint64_t>(__builtin_popcountll(w));
    first += 64;
  }
  while (first + 7 <= last) n += static_cast<uint64_t>(__builtin_popcount(static_cast<unsigned char>(v[first >> 3]))), first += 8;
  while (first <= last) n += bit_at(v, first++);
  return n;
}

// "BYTE" (the default) or "BIT" at argv[i] if present; false after replying a syntax error.
bool parse_unit(ExecContext& ctx, Argv argv, size_t i, bool& bits) {
  bits = false;
  if (i >= argv.size()) return true;
  if (i + 1 != argv.size()) return ctx.out.error(kErrSyntax), false;
  if (iequals(argv[i], "bit")) {
    bits = true;
  } else if (!iequals(argv[i], "byte")) {
    return ctx.out.error(kErrSyntax), false;
  }
  return true;
}

}  // namespace

void setbit(ExecContext& ctx, Argv argv) {
  uint64_t offset = 0;
  if (!parse_bit_offset(argv[2], offset)) return ctx.out.error(kErrBitOffset);
  if (argv[3] != "0" && argv[3] != "1") return ctx.out.error("ERR bit is not an integer or out of range");
  const bool on = argv[3] == "1";
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kWrite, e)) return;
  std::string value(e == nullptr ? std::string_view() : e->string_value());
  const size_t need = static_cast<size_t>(offset >> 3) + 1;
  if (value.size() < need) value.resize(need, '\0');
  const bool old = bit_at(value, offset);
  const auto mask = static_cast<unsigned char>(1u << (7 - (offset & 7)));
  auto& byte = reinterpret_cast<unsigned char&>(value[offset >> 3]);
  byte = on ? static_cast<unsigned char>(byte | mask) : static_cast<unsigned char>(byte & ~mask);
  ctx.store.set_string(argv[1], value, 0, /*keep_ttl=*/true, e != nullptr ? e->client_flags() : 0);
  ctx.out.integer(old ? 1 : 0);
}

void getbit(ExecContext& ctx, Argv argv) {
  uint64_t offset = 0;
  if (!parse_bit_offset(argv[2], offset)) return ctx.out.error(kErrBitOffset);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  const std::string_view v = e == nullptr ? std::string_view() : e->string_value();
  ctx.out.integer((offset >> 3) < v.size() && bit_at(v, offset) ? 1 : 0);
}

void bitcount(ExecContext& ctx, Argv argv) {
  if (argv.size() == 3 || argv.size() > 5) return ctx.out.error(kErrSyntax);
  int64_t start = 0, end = -1;
  bool bits = false;
  if (argv.size() >= 4) {
    if (!parse_i64(argv[2], start) || !parse_i64(argv[3], end)) return ctx.out.error(kErrNotInt);
    if (!parse_unit(ctx, argv, 4, bits)) return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  const std::string_view v = e == nullptr ? std::string_view() : e->string_value();
  const int64_t len = static_cast<int64_t>(v.size()) * (bits ? 8 : 1);
  // As GETRANGE: two negative indexes out of order are empty before any clamping.
  if (start < 0 && end < 0 && start > end) return ctx.out.integer(0);
  if (v.empty() || !clamp(start, end, len)) return ctx.out.integer(0);
  const uint64_t first = bits ? static_cast<uint64_t>(start) : static_cast<uint64_t>(start) * 8;
  const uint64_t last = bits ? static_cast<uint64_t>(end) : static_cast<uint64_t>(end) * 8 + 7;
  ctx.out.integer(static_cast<int64_t>(count_bits(v, first, last)));
}

void bitpos(ExecContext& ctx, Argv argv) {
  if (argv.size() > 6) return ctx.out.error(kErrSyntax);
  if (argv[2] != "0" && argv[2] != "1") {
    int64_t b = 0;
    return ctx.out.error(parse_i64(argv[2], b) ? "ERR The bit argument must be 1 or 0." : kErrNotInt);
  }
  const bool want = argv[2] == "1";
  int64_t start = 0, end = -1;
  bool end_given = false, bits = false;
  if (argv.size() >= 4 && !parse_i64(argv[3], start)) return ctx.out.error(kErrNotInt);
  if (argv.size() >= 5) {
    if (!parse_i64(argv[4], end)) return ctx.out.error(kErrNotInt);
    end_given = true;
    if (!parse_unit(ctx, argv, 5, bits)) return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  if (e == nullptr) return ctx.out.integer(want ? -1 : 0);
  const std::string_view v = e->string_value();
  const int64_t len = static_cast<int64_t>(v.size()) * (bits ? 8 : 1);
  if (!clamp(start, end, len)) return ctx.out.integer(-1);
  const uint64_t first = bits ? static_cast<uint64_t>(start) : static_cast<uint64_t>(start) * 8;
  const uint64_t last = bits ? static_cast<uint64_t>(end) : static_cast<uint64_t>(end) * 8 + 7;
  uint64_t i = first;
  // Whole bytes that cannot hold the bit sought are skipped at once.
  const unsigned char skip = want ? 0x00 : 0xff;
  while (i <= last) {
    if ((i & 7) == 0 && i + 7 <= last && static_cast<unsigned char>(v[i >> 3]) == skip) {
      i += 8;
      continue;
    }
    if (bit_at(v, i) == want) return ctx.out.integer(static_cast<int64_t>(i));
    ++i;
  }
  // Looking for a clear bit with no end given: the string reads as padded with zeros past its end.
  if (!want && !end_given) return ctx.out.integer(static_cast<int64_t>(last + 1));
  ctx.out.integer(-1);
}

void bitop(ExecContext& ctx, Argv argv) {
  enum class Op { kAnd, kOr, kXor, kNot } op;
  if (iequals(argv[1], "and")) {
    op = Op::kAnd;
  } else if (iequals(argv[1], "or")) {
    op = Op::kOr;
  } else if (iequals(argv[1], "xor")) {
    op = Op::kXor;
  } else if (iequals(argv[1], "not")) {
    op = Op::kNot;
  } else {
    return ctx.out.error(kErrSyntax);
  }
  if (op == Op::kNot && argv.size() != 4) return ctx.out.error("ERR BITOP NOT must be called with a single source key.");
  std::vector<std::string> sources;
  size_t longest = 0;
  for (size_t i = 3; i < argv.size(); ++i) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, argv[i], ValueType::kString, Access::kRead, e)) return;
    sources.emplace_back(e == nullptr ? std::string_view() : e->string_value());
    longest = std::max(longest, sources.back().size());
  }
  std::string out(longest, '\0');
  for (size_t b = 0; b < longest; ++b) {
    auto byte = [&](size_t s) -> unsigned char {
      return b < sources[s].size() ? static_cast<unsigned char>(sources[s][b]) : 0;
    };
    unsigned char r = byte(0);
    if (op == Op::kNot) {
      r = static_cast<unsigned char>(~r);
    } else {
      for (size_t s = 1; s < sources.size(); ++s) {
        r = op == Op::kAnd ? (r & byte(s)) : op == Op::kOr ? (r | byte(s)) : (r ^ byte(s));
      }
    }
    out[b] = static_cast<char>(r);
  }
  ctx.store.erase(argv[2], ctx.now_ms);
  if (!out.empty()) ctx.store.set_string(argv[2], out, 0, false);
  ctx.out.integer(static_cast<int64_t>(out.size()));
}

}  // namespace tally::server::cmd

// ---- BITFIELD, BITFIELD_RO ----

namespace tally::server::cmd {
namespace {

enum class Overflow : uint8_t { kWrap, kSat, kFail };
enum class FieldOp : uint8_t { kGet, kSet, kIncrBy };

struct FieldStep {
  FieldOp op;
  bool is_signed;
  unsigned bits;
  uint64_t offset;  // in bits
  int64_t arg;      // SET's value, INCRBY's increment
  Overflow overflow;
};

// "i1".."i64" or "u1".."u63".
bool parse_field_type(std::string_view s, bool& is_signed, unsigned& bits) {
  if (s.size() < 2 || (s[0] != 'i' && s[0] != 'I' && s[0] != 'u' && s[0] != 'U')) return false;
  is_signed = s[0] == 'i' || s[0] == 'I';
  int64_t n = 0;
  if (!parse_i64(s.substr(1), n) || n < 1 || n > (is_signed ? 64 : 63)) return false;
  bits = static_cast<unsigned>(n);
  return true;
}

// "N" (bits) or "#N" (N fields of the type's width); as in Redis, the field must start inside the
// string limit (a read past the end sees zeros; a write there is refused by the caller).
bool parse_field_offset(std::string_view s, unsigned bits, uint64_t& out) {
  const bool scaled = !s.empty() && s[0] == '#';
  int64_t v = 0;
  if (!parse_i64(scaled ? s.substr(1) : s, v) || v < 0) return false;
  unsigned __int128 at = static_cast<unsigned __int128>(v) * (scaled ? bits : 1);
  if (at > kBitOffsetMax) return false;
  out = static_cast<uint64_t>(at);
  return true;
}

uint64_t read_field(std::string_view v, uint64_t offset, unsigned bits) {
  uint64_t x = 0;
  for (unsigned i = 0; i < bits; ++i) {
    const uint64_t b = offset + i;
    x = (x << 1) | ((b >> 3) < v.size() && bit_at(v, b) ? 1u : 0u);
  }
  return x;
}

void write_field(std::string& v, uint64_t offset, unsigned bits, uint64_t x) {
  for (unsigned i = 0; i < bits; ++i) {
    const uint64_t b = offset + i;
    const bool on = (x >> (bits - 1 - i)) & 1;
    const auto mask = static_cast<unsigned char>(1u << (7 - (b & 7)));
    auto& byte = reinterpret_cast<unsigned char&>(v[b >> 3]);
    byte = on ? static_cast<unsigned char>(byte | mask) : static_cast<unsigned char>(byte & ~mask);
  }
}

// The field's value as a number (sign-extended when signed).
__int128 field_value(uint64_t raw, bool is_signed, unsigned bits) {
  if (!is_signed || bits == 64) return is_signed ? static_cast<__int128>(static_cast<int64_t>(raw)) : raw;
  const uint64_t sign = uint64_t{1} << (bits - 1);
  return (raw & sign) ? static_cast<__int128>(raw) - (static_cast<__int128>(1) << bits) : static_cast<__int128>(raw);
}

// Fits `want` into the field under the overflow rule; false when FAIL refuses it. `out` is the field's
// new value as a number (what the reply shows). `huge_negative_saturates_up`: SET of a signed field
// below max - 2^63 saturates to the maximum, as redis-server 7 does (its overflow test computes
// max - value in 64 bits, which wraps for such values and reads as an overflow upward).
bool fit_field(__int128 want, bool is_signed, unsigned bits, Overflow ow, bool huge_negative_saturates_up,
               __int128& out) {
  const __int128 span = static_cast<__int128>(1) << bits;
  const __int128 min = is_signed ? -(span / 2) : 0;
  const __int128 max = is_signed ? span / 2 - 1 : span - 1;
  if (want >= min && want <= max) {
    out = want;
    return true;
  }
  switch (ow) {
    case Overflow::kFail:
      return false;
    case Overflow::kSat:
      out = want > max || (huge_negative_saturates_up && want <= max - (static_cast<__int128>(1) << 63)) ? max : min;
      return true;
    case Overflow::kWrap: {
      __int128 m = want % span;
      if (m < 0) m += span;          // 0 .. span-1
      if (is_signed && m > max) m -= span;
      out = m;
      return true;
    }
  }
  return false;
}

void bitfield_generic(ExecContext& ctx, Argv argv, bool read_only) {
  std::vector<FieldStep> steps;
  Overflow overflow = Overflow::kWrap;
  bool writes = false;
  uint64_t write_end = 0;  // bytes the writes need
  for (size_t i = 2; i < argv.size();) {
    const std::string_view word = argv[i];
    FieldOp op;
    size_t need = 3;
    if (iequals(word, "get")) {
      op = FieldOp::kGet;
      need = 2;
    } else if (iequals(word, "set")) {
      op = FieldOp::kSet;
    } else if (iequals(word, "incrby")) {
      op = FieldOp::kIncrBy;
    } else if (iequals(word, "overflow") && i + 1 < argv.size()) {
      if (iequals(argv[i + 1], "wrap")) {
        overflow = Overflow::kWrap;
      } else if (iequals(argv[i + 1], "sat")) {
        overflow = Overflow::kSat;
      } else if (iequals(argv[i + 1], "fail")) {
        overflow = Overflow::kFail;
      } else {
        return ctx.out.error("ERR Invalid OVERFLOW type specified");
      }
      i += 2;
      continue;
    } else {
      return ctx.out.error(kErrSyntax);
    }
    if (i + need >= argv.size()) return ctx.out.error(kErrSyntax);
    FieldStep s{op, false, 0, 0, 0, overflow};
    if (!parse_field_type(argv[i + 1], s.is_signed, s.bits)) {
      return ctx.out.error(
          "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
    }
    if (!parse_field_offset(argv[i + 2], s.bits, s.offset)) return ctx.out.error(kErrBitOffset);
    if (op != FieldOp::kGet) {
      if (!parse_i64(argv[i + 3], s.arg)) return ctx.out.error(kErrNotInt);
      writes = true;
      write_end = std::max(write_end, (s.offset + s.bits - 1) / 8 + 1);
    }
    steps.push_back(s);
    i += need + 1;
  }
  if (read_only && writes) return ctx.out.error("ERR BITFIELD_RO only supports the GET subcommand");
  if (write_end > store::Store::kStringBytesMax) return ctx.out.error(kErrMaxBulk);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, writes ? Access::kWrite : Access::kRead, e)) return;
  std::string value;
  std::string_view view = e == nullptr ? std::string_view() : e->string_value();
  bool changed = false;  // a write took effect, or the string was created or grown
  if (writes) {
    changed = e == nullptr || view.size() < write_end;
    // As Redis: the string grows to cover every write's field first, even one that FAIL refuses.
    value.assign(view);
    if (value.size() < write_end) value.resize(write_end, '\0');
    view = value;
  }
  ctx.out.array(steps.size());
  auto reply_number = [&](__int128 x) { ctx.out.integer(static_cast<int64_t>(x)); };
  for (const FieldStep& s : steps) {
    const __int128 old = field_value(read_field(view, s.offset, s.bits), s.is_signed, s.bits);
    if (s.op == FieldOp::kGet) {
      reply_number(old);
      continue;
    }
    // SET of an unsigned field takes the value's 64 bits as unsigned, as Redis does (-1 is 2^64-1).
    const __int128 want = s.op == FieldOp::kSet
                              ? (s.is_signed ? static_cast<__int128>(s.arg)
                                             : static_cast<__int128>(static_cast<uint64_t>(s.arg)))
                              : old + s.arg;
    __int128 now = 0;
    if (!fit_field(want, s.is_signed, s.bits, s.overflow, s.op == FieldOp::kSet && s.is_signed, now)) {
      ctx.out.null();
      continue;
    }
    write_field(value, s.offset, s.bits, static_cast<uint64_t>(now));
    view = value;
    changed = true;
    reply_number(s.op == FieldOp::kSet ? old : now);
  }
  if (changed) ctx.store.set_string(argv[1], value, 0, /*keep_ttl=*/true, e != nullptr ? e->client_flags() : 0);
}

}  // namespace

void bitfield(ExecContext& ctx, Argv argv) { bitfield_generic(ctx, argv, false); }
void bitfield_ro(ExecContext& ctx, Argv argv) { bitfield_generic(ctx, argv, true); }

}  // namespace tally::server::cmd
