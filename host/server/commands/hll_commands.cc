// HyperLogLog: PFADD, PFCOUNT, PFMERGE on string values in Redis's HyperLogLog layout, so the bytes
// move between tallyd and redis-server (GET/SET, DUMP/RESTORE) and both count the same.
//
// The layout: "HYLL", one encoding byte (0 dense, 1 sparse), three unused bytes, 8 bytes of cached
// cardinality (little-endian; the top bit of the last byte set: not valid), then the registers. Dense:
// 16384 registers of 6 bits, packed from the low bit of each byte up. Sparse (read here, written by
// redis-server for small sets): runs of zero registers (00xxxxxx: 1-64; 01xxxxxx yyyyyyyy: 1-16384)
// and of one value (1vvvvvxx: value 1-32 repeated 1-4 times). tallyd writes sparse while it fits in
// 3000 bytes (Redis's hll-sparse-max-bytes) and every register is at most 32, dense beyond.
//
// Registers: an element's 64-bit MurmurHash2 (64A variant, seed 0xadc83b19) picks the register with its
// low 14 bits; the register keeps the largest 1 + the number of trailing zeros of the remaining 50 bits
// (a bit set above them bounds it at 51). The count is Ertl's improved estimator over the histogram of
// register values ("New cardinality estimation algorithms for HyperLogLog sketches", 2017).
#include <cmath>
#include <cstring>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {

namespace {

using store::Access;
using store::Entry;
using store::ValueType;

constexpr uint32_t kRegisters = 1u << 14;
constexpr uint32_t kRegisterBits = 6;
constexpr uint32_t kMaxRank = 64 - 14 + 1;  // 51
constexpr size_t kHeaderBytes = 16;
constexpr size_t kDenseBytes = kHeaderBytes + (kRegisters * kRegisterBits + 7) / 8;  // 12304
constexpr const char* kErrNotHll = "WRONGTYPE Key is not a valid HyperLogLog string value.";
constexpr const char* kErrCorrupt = "INVALIDOBJ Corrupted HLL object detected";

uint64_t murmur64a(std::string_view data, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t len = data.size();
  uint64_t h = seed ^ (len * m);
  const size_t blocks = len / 8;
  for (size_t b = 0; b < blocks; ++b, p += 8) {
    uint64_t k = 0;
    for (int i = 7; i >= 0; --i) k = (k << 8) | p[i];  // little-endian, whatever the host
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const size_t tail = len & 7;
  if (tail != 0) {
    for (size_t i = tail; i-- > 0;) h ^= uint64_t{p[i]} << (8 * i);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// The register an element falls in and the rank it offers there.
void register_of(std::string_view element, uint32_t& index, uint8_t& rank) {
  uint64_t h = murmur64a(element, 0xadc83b19ULL);
  index = static_cast<uint32_t>(h & (kRegisters - 1));
  h >>= 14;
  h |= uint64_t{1} << (64 - 14);  // bounds the count at kMaxRank
  rank = static_cast<uint8_t>(__builtin_ctzll(h) + 1);
}

uint8_t dense_get(const uint8_t* regs, uint32_t i) {
  const uint32_t bit = i * kRegisterBits, byte = bit / 8, shift = bit % 8;
  const uint32_t lo = regs[byte] >> shift;
  const uint32_t hi = shift > 8 - kRegisterBits ? static_cast<uint32_t>(regs[byte + 1]) << (8 - shift) : 0;
  return static_cast<uint8_t>((lo | hi) & 0x3f);
}

void dense_set(uint8_t* regs, uint32_t i, uint8_t v) {
  const uint32_t bit = i * kRegisterBits, byte = bit / 8, shift = bit % 8;
  regs[byte] = static_cast<uint8_t>((regs[byte] & ~(0x3f << shift)) | (v << shift));
  if (shift > 8 - kRegisterBits) {
    regs[byte + 1] = static_cast<uint8_t>((regs[byte + 1] & ~(0x3f >> (8 - shift))) | (v >> (8 - shift)));
  }
}

// The registers of a stored value, one byte each; false when the value is not a HyperLogLog.
bool read_registers(std::string_view v, std::vector<uint8_t>& regs, bool& corrupt) {
  corrupt = false;
  if (v.size() < kHeaderBytes || v.substr(0, 4) != "HYLL") return false;
  const uint8_t encoding = static_cast<uint8_t>(v[4]);
  regs.assign(kRegisters, 0);
  const auto* p = reinterpret_cast<const uint8_t*>(v.data()) + kHeaderBytes;
  const size_t n = v.size() - kHeaderBytes;
  if (encoding == 0) {
    if (v.size() != kDenseBytes) return false;
    for (uint32_t i = 0; i < kRegisters; ++i) regs[i] = dense_get(p, i);
    return true;
  }
  if (encoding != 1) return false;
  uint32_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t op = p[i];
    uint32_t run = 0;
    uint8_t value = 0;
    if ((op & 0xc0) == 0) {
      run = (op & 0x3f) + 1u;
    } else if ((op & 0xc0) == 0x40) {
      if (i + 1 >= n) return corrupt = true, false;
      run = (((op & 0x3fu) << 8) | p[++i]) + 1u;
    } else {
      value = static_cast<uint8_t>(((op >> 2) & 0x1f) + 1);
      run = (op & 0x3u) + 1u;
    }
    if (run > kRegisters - at) return corrupt = true, false;
    for (uint32_t k = 0; k < run; ++k) regs[at++] = value;
  }
  if (at != kRegisters) return corrupt = true, false;
  return true;
}

std::string dense_value(const std::vector<uint8_t>& regs) {
  std::string out(kDenseBytes, '\0');
  std::memcpy(out.data(), "HYLL", 4);
  out[15] = static_cast<char>(0x80);  // no cached cardinality
  auto* p = reinterpret_cast<uint8_t*>(out.data()) + kHeaderBytes;
  for (uint32_t i = 0; i < kRegisters; ++i) {
    if (regs[i] != 0) dense_set(p, i, regs[i]);
  }
  return out;
}

// The sparse form, as redis-server writes it for small sets, when every register fits a VAL opcode
// (1-32) and the whole stays within kSparseBytesMax (Redis's hll-sparse-max-bytes default); else empty.
constexpr size_t kSparseBytesMax = 3000;

std::string sparse_value(const std::vector<uint8_t>& regs) {
  std::string out(kHeaderBytes, '\0');
  std::memcpy(out.data(), "HYLL", 4);
  out[4] = 1;
  out[15] = static_cast<char>(0x80);
  for (uint32_t i = 0; i < kRegisters;) {
    const uint8_t v = regs[i];
    uint32_t run = 1;
    while (i + run < kRegisters && regs[i + run] == v) ++run;
    i += run;
    if (v == 0) {
      while (run > 0) {
        const uint32_t n = std::min(run, kRegisters);
        if (n <= 64) {
          out.push_back(static_cast<char>(n - 1));  // ZERO: 00xxxxxx
        } else {
          out.push_back(static_cast<char>(0x40 | ((n - 1) >> 8)));  // XZERO: 01xxxxxx yyyyyyyy
          out.push_back(static_cast<char>((n - 1) & 0xff));
        }
        run -= n;
      }
    } else {
      if (v > 32) return {};
      while (run > 0) {
        const uint32_t n = std::min(run, 4u);
        out.push_back(static_cast<char>(0x80 | ((v - 1) << 2) | (n - 1)));  // VAL: 1vvvvvxx
        run -= n;
      }
    }
    if (out.size() > kSparseBytesMax) return {};
  }
  return out;
}

// What PFADD and PFMERGE store: sparse while small, dense beyond.
std::string stored_value(const std::vector<uint8_t>& regs) {
  std::string sparse = sparse_value(regs);
  return sparse.empty() ? dense_value(regs) : sparse;
}

double sigma(double x) {
  if (x == 1.0) return INFINITY;
  double y = 1.0, z = x, prev = 0;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (prev != z);
  return z;
}

double tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x, prev = 0;
  do {
    x = std::sqrt(x);
    prev = z;
    y *= 0.5;
    z -= std::pow(1.0 - x, 2) * y;
  } while (prev != z);
  return z / 3.0;
}

uint64_t estimate(const std::vector<uint8_t>& regs) {
  uint32_t histogram[64] = {};  // a register holds 6 bits, whatever a damaged value claims
  for (uint8_t r : regs) ++histogram[r];
  const double m = kRegisters;
  double z = m * tau((m - histogram[kMaxRank]) / m);
  for (uint32_t j = kMaxRank - 1; j >= 1; --j) {
    z += histogram[j];
    z *= 0.5;
  }
  z += m * sigma(histogram[0] / m);
  constexpr double kAlphaInf = 0.721347520444481703680;  // 1 / (2 ln 2)
  return static_cast<uint64_t>(std::llroundl(kAlphaInf * m * m / z));
}

// The registers of `key` into `regs` (max-merged when `merge`); false after answering an error.
bool load(ExecContext& ctx, std::string_view key, std::vector<uint8_t>& regs, bool merge, bool& found,
          Access access = Access::kRead) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, key, ValueType::kString, access, e)) return false;
  found = e != nullptr;
  if (e == nullptr) {
    if (!merge) regs.assign(kRegisters, 0);
    return true;
  }
  std::vector<uint8_t> mine;
  bool corrupt = false;
  if (!read_registers(e->string_value(), mine, corrupt)) {
    ctx.out.error(corrupt ? kErrCorrupt : kErrNotHll);
    return false;
  }
  if (!merge) {
    regs = std::move(mine);
  } else {
    for (uint32_t i = 0; i < kRegisters; ++i) regs[i] = std::max(regs[i], mine[i]);
  }
  return true;
}

// The registers of the union of `keys` (absent ones are empty); false after answering an error.
bool union_of(ExecContext& ctx, Argv keys, std::vector<uint8_t>& regs) {
  regs.assign(kRegisters, 0);
  for (std::string_view key : keys) {
    bool found = false;
    if (!load(ctx, key, regs, true, found)) return false;
  }
  return true;
}

}  // namespace

void pfadd(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  std::vector<uint8_t> regs;
  bool found = false;
  if (!load(ctx, argv[1], regs, false, found, Access::kWrite)) return;
  bool changed = !found;  // creating the key counts as a change, as in Redis
  for (size_t i = 2; i < argv.size(); ++i) {
    uint32_t index = 0;
    uint8_t rank = 0;
    register_of(argv[i], index, rank);
    if (rank > regs[index]) {
      regs[index] = rank;
      changed = true;
    }
  }
  if (changed) ctx.store.set_string(argv[1], stored_value(regs), 0, /*keep_ttl=*/true);
  ctx.out.integer(changed ? 1 : 0);
}

void pfcount(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  std::vector<uint8_t> regs;
  if (union_of(ctx, argv.subspan(1), regs)) ctx.out.integer(static_cast<int64_t>(estimate(regs)));
}

void pfmerge(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  std::vector<uint8_t> regs;
  if (!union_of(ctx, argv.subspan(1), regs)) return;  // the destination counts as a source
  ctx.store.set_string(argv[1], stored_value(regs), 0, /*keep_ttl=*/true);
  ctx.out.ok();
}

}  // namespace tally::server::cmd
