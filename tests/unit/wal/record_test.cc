// Records and segment headers: the layout of docs/wal-format.md byte for byte, both checksums, and
// the sealer's split of large batches.
#include <gtest/gtest.h>

#include <cstring>

#include "host/common/rng.h"
#include "host/wal/record.h"
#include "host/wal/seal.h"
#include "kernels/cpu/reference.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}
uint64_t le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

TEST(Record, LayoutFollowsTheFormat) {
  std::string out;
  encode_record(entry_header(7, 3, 42, 2), 9, "hello", out);
  ASSERT_EQ(out.size(), 48u + 8u);
  EXPECT_EQ(le32(out, 0), 0u);  // CRCs are filled by sealing
  EXPECT_EQ(le32(out, 4), 0u);
  EXPECT_EQ(le32(out, 8), 5u);
  EXPECT_EQ(out[12], 1);
  EXPECT_EQ(out[13], 2);
  EXPECT_EQ(le32(out, 16), 7u);
  EXPECT_EQ(le64(out, 24), 3u);
  EXPECT_EQ(le64(out, 32), 42u);
  EXPECT_EQ(le64(out, 40), 9u);
  EXPECT_EQ(out.substr(48, 5), "hello");
  EXPECT_EQ(out.substr(53), std::string(3, '\0'));  // padding to 8

  seal_record_cpu(out.data());
  EXPECT_EQ(le32(out, 0), kernels::crc32c(reinterpret_cast<const uint8_t*>(out.data() + 8), 40));
  EXPECT_EQ(le32(out, 4), kernels::crc32c(reinterpret_cast<const uint8_t*>("hello"), 5));
}

TEST(Record, RoundTripAndChecks) {
  Rng rng(3);
  for (int round = 0; round < 200; ++round) {
    const size_t n = round == 0 ? 0 : rng.uniform(300);
    std::string payload(n, '\0');
    for (char& c : payload) c = static_cast<char>(rng.next());
    const RecordHeader h = entry_header(static_cast<uint32_t>(rng.next()), rng.next(), rng.next(), static_cast<uint8_t>(rng.uniform(3)));
    const uint64_t seq = rng.range(1, 1000);
    std::string out;
    encode_record(h, seq, payload, out);
    ASSERT_EQ(out.size(), record_bytes(n));
    seal_record_cpu(out.data());
    const RecordFrame f = decode_record_frame(out.data());
    EXPECT_EQ(f.header(), h);
    EXPECT_EQ(f.payload_bytes, n);
    EXPECT_EQ(f.segment_seq, seq);
    EXPECT_EQ(record_header_problem(f, out.data(), seq, out.size()), nullptr);
    EXPECT_EQ(crc32c_any(out.data() + 48, n), f.payload_crc);
    // The header check rejects another segment's record and a length past the file.
    EXPECT_STREQ(record_header_problem(f, out.data(), seq + 1, out.size()), "segment number differs");
    if (n > 0) {
      EXPECT_STREQ(record_header_problem(f, out.data(), seq, out.size() - 1), "length past end of file");
    }
    EXPECT_STREQ(record_header_problem(f, out.data(), seq, 47), "header past end of file");
    // Any flipped bit of bytes 8..48 fails the header checksum (or, in the segment field, the segment check).
    std::string bad = out;
    const size_t at = 8 + rng.uniform(40);
    bad[at] = static_cast<char>(bad[at] ^ (1 << rng.uniform(8)));
    const RecordFrame g = decode_record_frame(bad.data());
    EXPECT_NE(record_header_problem(g, bad.data(), seq, bad.size()), nullptr);
    if (n > 0) {
      bad = out;
      const size_t p = 48 + rng.uniform(n);
      bad[p] = static_cast<char>(bad[p] ^ 1);
      EXPECT_EQ(record_header_problem(decode_record_frame(bad.data()), bad.data(), seq, bad.size()), nullptr);
      EXPECT_NE(crc32c_any(bad.data() + 48, n), decode_record_frame(bad.data()).payload_crc);
    }
  }
}

TEST(Record, HeaderFieldsNoWriterProducesAreRejected) {
  std::string out;
  encode_record(entry_header(1, 1, 1), 5, "x", out);
  auto check = [&](size_t at, char value) {
    std::string bad = out;
    bad[at] = value;
    seal_record_cpu(bad.data());
    return record_header_problem(decode_record_frame(bad.data()), bad.data(), 5, bad.size());
  };
  EXPECT_STREQ(check(12, 3), "record type");
  EXPECT_STREQ(check(13, 3), "entry type");
  EXPECT_STREQ(check(14, 1), "reserved header bytes");
  EXPECT_STREQ(check(21, 1), "reserved header bytes");
  EXPECT_EQ(check(12, 1), nullptr);
}

TEST(Record, Vote) {
  EXPECT_EQ(*decode_vote(encode_vote(0x1122334455667788ULL)), 0x1122334455667788ULL);
  EXPECT_EQ(encode_vote(1), std::string("\x01\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(decode_vote("1234567").status().code(), Code::kCorruption);
}

TEST(SegmentHeader, LayoutAndChecks) {
  const std::string h = encode_segment_header(3, 77);
  ASSERT_EQ(h.size(), kSegmentHeaderBytes);
  EXPECT_EQ(h.substr(0, 8), "TALLYWAL");
  EXPECT_EQ(le32(h, 8), kFormatVersion);
  EXPECT_EQ(le32(h, 12), 3u);
  EXPECT_EQ(le64(h, 16), 77u);
  EXPECT_EQ(h.substr(24, 36), std::string(36, '\0'));
  EXPECT_EQ(le32(h, 60), kernels::crc32c(reinterpret_cast<const uint8_t*>(h.data()), 60));
  auto d = decode_segment_header(h);
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(d->shard, 3u);
  EXPECT_EQ(d->seq, 77u);
  for (size_t at = 0; at < kSegmentHeaderBytes; ++at) {
    std::string bad = h;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    EXPECT_FALSE(decode_segment_header(bad).is_ok()) << "byte " << at;
  }
  EXPECT_FALSE(decode_segment_header(h.substr(0, 63)).is_ok());
}

TEST(Crc, StandardCheckValueAndCombine) {
  EXPECT_EQ(crc32c_any("123456789", 9), 0xE3069283u);
  Rng rng(5);
  std::string s(5000, '\0');
  for (char& c : s) c = static_cast<char>(rng.next());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{2500}, size_t{4999}, size_t{5000}}) {
    const uint32_t a = crc32c_any(s.data(), cut);
    const uint32_t b = crc32c_any(s.data() + cut, s.size() - cut);
    EXPECT_EQ(crc32c_combine(a, b, s.size() - cut), crc32c_any(s.data(), s.size())) << cut;
  }
}

// Records of a batch encoded back to back, with where each starts.
std::string batch_of(Rng& rng, size_t records, size_t payload_max, std::vector<uint64_t>& starts) {
  std::string buf;
  for (size_t i = 0; i < records; ++i) {
    starts.push_back(buf.size());
    std::string payload(rng.uniform(payload_max + 1), '\0');
    for (char& c : payload) c = static_cast<char>(rng.next());
    encode_record(entry_header(1, 1, i + 1), 4, payload, buf);
  }
  return buf;
}

TEST(Sealer, OneChecksumCallWithTwoRangesPerRecord) {
  Rng rng(8);
  std::vector<uint64_t> starts;
  std::string buf = batch_of(rng, 100, 500, starts);
  std::string expect = buf;
  for (uint64_t s : starts) seal_record_cpu(expect.data() + s);
  ChecksumCounts counts;
  Sealer sealer;
  EXPECT_EQ(sealer.seal(cpu_checksum(&counts), buf.data(), buf.size(), starts), 1u);
  EXPECT_EQ(counts.calls, 1u);
  EXPECT_EQ(counts.items, 200u);
  EXPECT_EQ(buf, expect);
}

TEST(Sealer, SplitsRangesAndWindowsBeyondTheLimitsAndCombines) {
  Rng rng(9);
  std::vector<uint64_t> starts;
  std::string buf = batch_of(rng, 40, 3000, starts);
  std::string expect = buf;
  for (uint64_t s : starts) seal_record_cpu(expect.data() + s);
  ChecksumCounts counts;
  Sealer sealer;
  const SealLimits small{100, 4096, 16};  // ranges of 100 bytes, 4 KiB blobs, 16 items a call
  const uint32_t calls = sealer.seal(cpu_checksum(&counts), buf.data(), buf.size(), starts, small);
  EXPECT_GT(calls, 1u);
  EXPECT_EQ(counts.calls, calls);
  EXPECT_EQ(buf, expect);
}

TEST(Sealer, AFailedChecksumCallFallsBackToTheCpu) {
  Rng rng(10);
  std::vector<uint64_t> starts;
  std::string buf = batch_of(rng, 5, 100, starts);
  std::string expect = buf;
  for (uint64_t s : starts) seal_record_cpu(expect.data() + s);
  Sealer sealer;
  sealer.seal([](kernels::ChecksumBatch&) { return Status::unavailable("device lost"); }, buf.data(), buf.size(), starts);
  EXPECT_EQ(sealer.fallbacks(), 1u);
  EXPECT_EQ(buf, expect);
}

}  // namespace
}  // namespace tally::wal::test
