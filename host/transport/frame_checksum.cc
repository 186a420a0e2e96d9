#include "host/transport/frame_checksum.h"

#include <algorithm>
#include <cstring>

#include "host/common/log.h"
#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/reference.h"

namespace tally::transport {

namespace {

// One batch, computed by fn or, when fn fails (a device gone bad), by the CPU reference.
void run_batch(const ChecksumFn& fn, kernels::ChecksumBatch& batch, uint64_t& fallbacks) {
  TALLY_ASSERT(batch.items <= kernels::kBatchItemsMax && batch.blob_bytes <= kernels::kBatchBlobBytesMax);
  if (Status st = fn(batch); !st.is_ok()) {
    TALLY_LOG_WARN("transport: checksum batch failed ({}), computed on the CPU", st.to_string());
    ++fallbacks;
    const Status cpu = kernels::checksum_cpu_checked(batch);
    TALLY_ASSERT_MSG(cpu.is_ok(), "transport: the checksum batch it built is malformed");
  }
}

// Appends the ranges of one payload (pieces of at most one engine range) relative to base.
void add_payload_ranges(uint64_t at, uint32_t bytes, std::vector<uint64_t>& offsets, std::vector<uint32_t>& lengths) {
  uint32_t done = 0;
  do {
    const uint32_t n = std::min<uint32_t>(bytes - done, kernels::kChecksumItemBytesMax);
    offsets.push_back(at + done);
    lengths.push_back(n);
    done += n;
  } while (done < bytes);
}

// The payload CRC from its pieces, starting at crcs[*piece]; advances *piece past them.
uint32_t combine_pieces(const std::vector<uint32_t>& crcs, const std::vector<uint32_t>& lengths, size_t* piece,
                        uint32_t bytes) {
  uint32_t crc = crcs[*piece];
  uint64_t done = lengths[*piece];
  ++*piece;
  while (done < bytes) {
    crc = crc32c_combine(crc, crcs[*piece], lengths[*piece]);
    done += lengths[*piece];
    ++*piece;
  }
  return crc;
}

}  // namespace

const ChecksumFn& cpu_checksum_fn() {
  static const ChecksumFn fn = [](kernels::ChecksumBatch& b) { return kernels::checksum_cpu_checked(b); };
  return fn;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  // The standard CRC is linear up to its inversions, which cancel between the three terms.
  return kernels::crc32c_math::shift(crc_a, bytes_b, kernels::crc32c_math::kPowers.data()) ^ crc_b;
}

uint32_t FrameSealer::seal(const ChecksumFn& fn, std::string& buf) {
  if (starts_.empty()) return 0;
  const size_t base = starts_.front();
  offsets_.clear();
  lengths_.clear();
  for (size_t start : starts_) {
    TALLY_ASSERT(start >= base && start + kFrameHeaderBytes <= buf.size());
    const FrameHeader h = get_header(buf.data() + start);
    TALLY_ASSERT(start + kFrameHeaderBytes + h.payload_bytes <= buf.size());
    offsets_.push_back(start - base);
    lengths_.push_back(kHeaderCrcCoveredBytes);
    add_payload_ranges(start - base + kFrameHeaderBytes, h.payload_bytes, offsets_, lengths_);
  }
  crcs_.assign(offsets_.size(), 0);
  kernels::ChecksumBatch batch;
  batch.blob = reinterpret_cast<const uint8_t*>(buf.data() + base);
  batch.blob_bytes = buf.size() - base;
  batch.offsets = offsets_.data();
  batch.lengths = lengths_.data();
  batch.items = static_cast<uint32_t>(offsets_.size());
  batch.crc_out = crcs_.data();
  run_batch(fn, batch, fallbacks_);
  size_t piece = 0;
  for (size_t start : starts_) {
    char* p = buf.data() + start;
    FrameHeader h = get_header(p);
    h.header_crc = crcs_[piece++];
    const uint32_t payload_crc = combine_pieces(crcs_, lengths_, &piece, h.payload_bytes);
    h.frame_crc = crc32c_combine(h.header_crc, payload_crc, h.payload_bytes);
    put_header(p, h);
  }
  TALLY_ASSERT(piece == offsets_.size());
  starts_.clear();
  return 1;
}

size_t FrameVerifier::verify(const ChecksumFn& fn, std::span<const Frame> frames) {
  if (frames.empty()) return 0;
  const char* base = frames.front().payload.data();
  offsets_.clear();
  lengths_.clear();
  uint64_t end = 0;
  for (const Frame& f : frames) {
    TALLY_ASSERT(f.payload.size() == f.header.payload_bytes);
    TALLY_ASSERT(f.payload.data() >= base);
    const auto at = static_cast<uint64_t>(f.payload.data() - base);
    add_payload_ranges(at, f.header.payload_bytes, offsets_, lengths_);
    end = std::max(end, at + f.payload.size());
  }
  crcs_.assign(offsets_.size(), 0);
  kernels::ChecksumBatch batch;
  batch.blob = reinterpret_cast<const uint8_t*>(base);
  batch.blob_bytes = end;
  batch.offsets = offsets_.data();
  batch.lengths = lengths_.data();
  batch.items = static_cast<uint32_t>(offsets_.size());
  batch.crc_out = crcs_.data();
  run_batch(fn, batch, fallbacks_);
  size_t piece = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameHeader& h = frames[i].header;
    const uint32_t payload_crc = combine_pieces(crcs_, lengths_, &piece, h.payload_bytes);
    if (crc32c_combine(h.header_crc, payload_crc, h.payload_bytes) != h.frame_crc) return i;
  }
  TALLY_ASSERT(piece == offsets_.size());
  return frames.size();
}

}  // namespace tally::transport
