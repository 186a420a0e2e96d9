// Peer frames: round trips through the incremental decoder, every malformed case the decoder and the
// verifier must refuse, the checksum seam (one batch per write, CPU fallback, pieces over 16 MiB).
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/transport/frame.h"
#include "host/transport/frame_checksum.h"
#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/reference.h"

namespace tally::transport {
namespace {

constexpr uint32_t kBound = 1u << 20;

std::string bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// CRC32C byte by byte from the table, independent of ISA-L and of the combine arithmetic.
uint32_t slow_crc(std::string_view s) {
  namespace m = kernels::crc32c_math;
  return ~m::raw_update(~0u, reinterpret_cast<const uint8_t*>(s.data()), s.size(), m::kTable.data());
}

// Decodes every frame of `wire` fed in one chunk; fails the test on a fault.
std::vector<std::pair<FrameHeader, std::string>> decode_all(std::string_view wire, uint32_t bound = kBound) {
  FrameDecoder d(bound);
  d.append(wire);
  std::vector<Frame> frames;
  std::optional<Frame> f;
  for (;;) {
    const FrameFault fault = d.next(f);
    EXPECT_EQ(fault, FrameFault::kNone) << frame_fault_name(fault);
    if (!f) break;
    frames.push_back(*f);
  }
  FrameVerifier v;
  EXPECT_EQ(v.verify(cpu_checksum_fn(), frames), frames.size());
  std::vector<std::pair<FrameHeader, std::string>> out;
  for (const Frame& fr : frames) out.emplace_back(fr.header, std::string(fr.payload));
  return out;
}

// What one damaged stream does to a fresh decoder: the fault, or kNone with whether the frame verified.
struct Outcome {
  FrameFault fault = FrameFault::kNone;
  bool frame = false;
  bool verified = false;
};

Outcome feed_one(std::string_view wire, uint32_t bound = kBound) {
  FrameDecoder d(bound);
  d.append(wire);
  std::optional<Frame> f;
  Outcome o;
  o.fault = d.next(f);
  if (f) {
    o.frame = true;
    FrameVerifier v;
    o.verified = v.verify(cpu_checksum_fn(), std::span<const Frame>(&*f, 1)) == 1;
  }
  return o;
}

// A header with every field chosen by the caller and a correct header CRC.
std::string crafted(FrameHeader h, std::string_view payload, uint8_t version = kFrameVersion,
                    uint32_t magic = kFrameMagic) {
  std::string s(kFrameHeaderBytes, '\0');
  h.payload_bytes = h.payload_bytes == 0 ? static_cast<uint32_t>(payload.size()) : h.payload_bytes;
  put_header(s.data(), h);
  std::memcpy(s.data(), &magic, 4);
  s[4] = static_cast<char>(version);
  const uint32_t hc = kernels::crc32c(reinterpret_cast<const uint8_t*>(s.data()), kHeaderCrcCoveredBytes);
  std::memcpy(s.data() + 32, &hc, 4);
  const uint32_t fc = crc32c_combine(hc, slow_crc(payload), payload.size());
  std::memcpy(s.data() + 36, &fc, 4);
  s.append(payload);
  return s;
}

FrameHeader raft_header() {
  FrameHeader h;
  h.type = FrameType::kRaft;
  h.group = 7;
  h.source = 1;
  h.destination = 2;
  return h;
}

TEST(Frame, LayoutAndChecksumsFollowTheDoc) {
  const std::string payload = "hello, peer";
  const std::string w = encode_frame(FrameType::kRaft, 42, 3, 9, payload);
  ASSERT_EQ(w.size(), kFrameHeaderBytes + payload.size());
  EXPECT_EQ(w.substr(0, 4), "TLYP");
  EXPECT_EQ(static_cast<uint8_t>(w[4]), 1);
  EXPECT_EQ(static_cast<uint8_t>(w[5]), 16);
  const FrameHeader h = get_header(w.data());
  EXPECT_EQ(h.payload_bytes, payload.size());
  EXPECT_EQ(h.group, 42u);
  EXPECT_EQ(h.source, 3u);
  EXPECT_EQ(h.destination, 9u);
  EXPECT_EQ(h.header_crc, slow_crc(std::string_view(w).substr(0, 32)));
  EXPECT_EQ(h.frame_crc, slow_crc(w.substr(0, 32) + payload));
  EXPECT_EQ(slow_crc("123456789"), 0xE3069283u);
}

TEST(Frame, RoundTripOfEveryTypeAndSize) {
  struct Case {
    FrameType type;
    uint32_t group;
    size_t payload;
  };
  const std::vector<Case> cases = {{FrameType::kRaft, 0, 0},          {FrameType::kRaft, 5, 1},
                                   {FrameType::kRaft, 0xFFFFFFFE, 4097}, {FrameType::kHeartbeat, kNoGroup, 100},
                                   {FrameType::kClose, kNoGroup, 12},  {FrameType::kHello, kNoGroup, 65},
                                   {FrameType::kAuthOk, kNoGroup, 0},  {FrameType::kRaft, 1, kBound}};
  std::string wire;
  std::vector<std::string> payloads;
  for (size_t i = 0; i < cases.size(); ++i) {
    payloads.push_back(bytes(cases[i].payload, static_cast<uint32_t>(i)));
    wire += encode_frame(cases[i].type, cases[i].group, 10 + i, 20 + i, payloads.back());
  }
  const auto got = decode_all(wire);
  ASSERT_EQ(got.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(got[i].first.type, cases[i].type);
    EXPECT_EQ(got[i].first.group, cases[i].group);
    EXPECT_EQ(got[i].first.source, 10 + i);
    EXPECT_EQ(got[i].first.destination, 20 + i);
    EXPECT_EQ(got[i].second, payloads[i]);
  }
}

TEST(Frame, ThousandsOfFramesInRandomChunksComeOutInOrder) {
  std::mt19937 rng(5);
  std::string wire;
  std::vector<std::string> payloads;
  for (int i = 0; i < 3000; ++i) {
    payloads.push_back(bytes(rng() % 300, i));
    wire += encode_frame(FrameType::kRaft, i % 17, 1, 2, payloads.back());
  }
  FrameDecoder d(kBound);
  FrameVerifier v;
  size_t next = 0;
  for (size_t at = 0; at < wire.size();) {
    const size_t n = std::min<size_t>(wire.size() - at, 1 + rng() % 700);
    d.append(std::string_view(wire).substr(at, n));
    at += n;
    std::vector<Frame> frames;
    std::optional<Frame> f;
    while (d.next(f) == FrameFault::kNone && f) frames.push_back(*f);
    ASSERT_EQ(v.verify(cpu_checksum_fn(), frames), frames.size());
    for (const Frame& fr : frames) {
      ASSERT_LT(next, payloads.size());
      EXPECT_EQ(fr.payload, payloads[next]);
      EXPECT_EQ(fr.header.group, next % 17);
      ++next;
    }
    d.compact();
    EXPECT_LT(d.buffered_bytes(), kFrameHeaderBytes + 300);
  }
  EXPECT_EQ(next, payloads.size());
}

TEST(Frame, EveryFlippedBitIsRefused) {
  const std::string good = encode_frame(FrameType::kRaft, 3, 1, 2, bytes(50, 1));
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string w = good;
      w[i] = static_cast<char>(w[i] ^ (1 << bit));
      const Outcome o = feed_one(w);
      // Refused by the header check, or decoded and refused by the frame CRC; never accepted, and
      // never left waiting for bytes a damaged length invented.
      EXPECT_TRUE(o.fault != FrameFault::kNone || (o.frame && !o.verified))
          << "byte " << i << " bit " << bit << " fault " << frame_fault_name(o.fault) << " frame " << o.frame;
      if (i < kFrameHeaderBytes - 4) {
        EXPECT_EQ(o.fault, FrameFault::kChecksum) << "byte " << i;
      }
    }
  }
}

TEST(Frame, TruncatedFramesWaitAndNeverDecode) {
  const std::string good = encode_frame(FrameType::kHeartbeat, kNoGroup, 1, 2, bytes(300, 2));
  for (size_t n = 0; n < good.size(); ++n) {
    const Outcome o = feed_one(std::string_view(good).substr(0, n));
    EXPECT_EQ(o.fault, FrameFault::kNone) << n;
    EXPECT_FALSE(o.frame) << n;
  }
  EXPECT_TRUE(feed_one(good).verified);
}

TEST(Frame, OversizeIsRefusedFromTheHeaderAlone) {
  FrameHeader h = raft_header();
  h.payload_bytes = kBound + 1;
  const std::string header = crafted(h, "");  // only the 40 header bytes: the payload is never sent
  ASSERT_EQ(header.size(), kFrameHeaderBytes);
  EXPECT_EQ(feed_one(header).fault, FrameFault::kOversize);
  // The bound in force decides: before authentication it is the handshake's.
  const std::string hello = encode_frame(FrameType::kHello, kNoGroup, 1, 2, bytes(kHandshakePayloadBytesMax + 1, 3));
  EXPECT_EQ(feed_one(hello, kHandshakePayloadBytesMax).fault, FrameFault::kOversize);
  EXPECT_TRUE(feed_one(hello, kBound).verified);
  h.payload_bytes = 0xFFFFFFFFu;
  EXPECT_EQ(feed_one(crafted(h, "")).fault, FrameFault::kOversize);
}

TEST(Frame, MalformedHeadersWithGoodChecksumsAreRefused) {
  EXPECT_TRUE(feed_one(crafted(raft_header(), "x")).verified);  // the crafting itself is right
  EXPECT_EQ(feed_one(crafted(raft_header(), "x", 2)).fault, FrameFault::kMalformed);  // version
  EXPECT_EQ(feed_one(crafted(raft_header(), "x", 0)).fault, FrameFault::kMalformed);
  EXPECT_EQ(feed_one(crafted(raft_header(), "x", 1, 0x50594C55u)).fault, FrameFault::kMalformed);  // magic
  for (int t : {0, 5, 15, 20, 255}) {
    FrameHeader h = raft_header();
    h.type = static_cast<FrameType>(t);
    EXPECT_EQ(feed_one(crafted(h, "x")).fault, FrameFault::kMalformed) << "type " << t;
  }
  FrameHeader flags = raft_header();
  flags.flags = 1;
  EXPECT_EQ(feed_one(crafted(flags, "x")).fault, FrameFault::kMalformed);
  FrameHeader raft_without_group = raft_header();
  raft_without_group.group = kNoGroup;
  EXPECT_EQ(feed_one(crafted(raft_without_group, "x")).fault, FrameFault::kMalformed);
  FrameHeader heartbeat_with_group = raft_header();
  heartbeat_with_group.type = FrameType::kHeartbeat;
  EXPECT_EQ(feed_one(crafted(heartbeat_with_group, "x")).fault, FrameFault::kMalformed);
  FrameHeader publish = raft_header();
  publish.type = FrameType::kPublish;  // node-level, like a heartbeat: a group makes it malformed
  EXPECT_EQ(feed_one(crafted(publish, "x")).fault, FrameFault::kMalformed);
  publish.group = kNoGroup;
  EXPECT_TRUE(feed_one(crafted(publish, "x")).verified);
  FrameHeader no_source = raft_header();
  no_source.source = 0;
  EXPECT_EQ(feed_one(crafted(no_source, "x")).fault, FrameFault::kMalformed);
  FrameHeader to_itself = raft_header();
  to_itself.destination = to_itself.source;
  EXPECT_EQ(feed_one(crafted(to_itself, "x")).fault, FrameFault::kMalformed);
}

TEST(Frame, AFaultedDecoderStaysFaulted) {
  FrameDecoder d(kBound);
  std::string bad = encode_frame(FrameType::kRaft, 1, 1, 2, "abc");
  bad[0] ^= 1;
  d.append(bad);
  std::optional<Frame> f;
  EXPECT_EQ(d.next(f), FrameFault::kChecksum);
  d.append(encode_frame(FrameType::kRaft, 1, 1, 2, "abc"));
  EXPECT_EQ(d.next(f), FrameFault::kChecksum);
  EXPECT_FALSE(f);
}

TEST(FrameChecksum, OneBatchPerWriteAndACpuFallback) {
  int calls = 0;
  const ChecksumFn counting = [&](kernels::ChecksumBatch& b) {
    ++calls;
    EXPECT_EQ(b.items, 200u);  // two ranges per frame, all frames in one batch
    return kernels::checksum_cpu_checked(b);
  };
  std::string out = "left over from an earlier write";
  FrameSealer sealer;
  for (int i = 0; i < 100; ++i) sealer.add(append_unsealed_frame(out, FrameType::kRaft, i, 1, 2, bytes(i, i)));
  EXPECT_EQ(sealer.seal(counting, out), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(decode_all(std::string_view(out).substr(31)).size(), 100u);

  const ChecksumFn broken = [](kernels::ChecksumBatch&) { return Status::unavailable("device lost"); };
  std::string out2;
  sealer.add(append_unsealed_frame(out2, FrameType::kRaft, 1, 1, 2, "payload"));
  sealer.seal(broken, out2);
  EXPECT_EQ(sealer.fallbacks(), 1u);
  EXPECT_EQ(decode_all(out2).size(), 1u);
}

TEST(FrameChecksum, PayloadsOverOneEngineRangeAreCombinedFromPieces) {
  const size_t n = kernels::kChecksumItemBytesMax + 12345;
  const std::string payload = bytes(n, 9);
  const std::string w = encode_frame(FrameType::kRaft, 1, 1, 2, payload);
  EXPECT_EQ(get_header(w.data()).frame_crc, slow_crc(w.substr(0, 32) + payload));
  EXPECT_EQ(decode_all(w, kFrameBytesMaxMax).size(), 1u);
}

}  // namespace
}  // namespace tally::transport
