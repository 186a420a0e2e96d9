// Peer-frame checksums through one seam: a function that computes an offload `checksum` batch
// (kernels/cpu by default; tallyd hands it the shard's offload engine, as the WAL does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "host/common/status.h"
#include "host/transport/frame.h"
#include "kernels/cpu/formats.h"

namespace tally::transport {

// Computes crc_out for every range of the batch, or fails (then the CPU reference answers instead).
using ChecksumFn = std::function<Status(kernels::ChecksumBatch&)>;

// kernels::checksum_cpu_checked: the default seam.
const ChecksumFn& cpu_checksum_fn();

// CRC32C of A||B from CRC32C(A), CRC32C(B) and |B|.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);

// Fills in the CRCs of frames appended to one buffer, all of them with one checksum batch: two ranges
// per frame (header bytes 0..32, the payload in pieces of at most one engine range). Owns its arrays
// between calls, so a steady stream of writes allocates nothing.
class FrameSealer {
 public:
  void add(size_t frame_offset) { starts_.push_back(frame_offset); }
  size_t pending() const { return starts_.size(); }
  // Seals every frame added since the last seal; returns the calls of fn (0 or 1).
  uint32_t seal(const ChecksumFn& fn, std::string& buf);
  uint64_t fallbacks() const { return fallbacks_; }

 private:
  std::vector<size_t> starts_;
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> crcs_;
  uint64_t fallbacks_ = 0;
};

// Checks the frame CRCs of decoded frames (whose header CRCs the decoder checked) with one batch.
class FrameVerifier {
 public:
  // The index of the first frame whose frame CRC does not match, or frames.size() when all do.
  // The frames' payloads must lie in one buffer, in ascending order (a decoder's frames do).
  size_t verify(const ChecksumFn& fn, std::span<const Frame> frames);
  uint64_t fallbacks() const { return fallbacks_; }

 private:
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> crcs_;
  uint64_t fallbacks_ = 0;
};

}  // namespace tally::transport
