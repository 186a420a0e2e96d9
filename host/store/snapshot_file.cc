// Snapshot framing: header, chunk frames and footer written and checked. Chunk CRCs are computed in
// ranges the offload checksum accepts (16 MiB) and combined; the footer chains the CRCs in file order.
#include "host/store/snapshot_file.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "host/store/entry_record.h"
#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/slot.h"

namespace tally::store {
namespace {

static_assert(std::endian::native == std::endian::little, "fields are copied as host integers");

constexpr std::string_view kHeaderMagic = "TALLYSNP";
constexpr std::string_view kFooterMagic = "TALLYEND";
constexpr size_t kFooterCrcAt = kSnapshotFooterBytes - kSnapshotCrcBytes;
constexpr size_t kMembershipLengthAt = kSnapshotHeaderFixedBytes - 4;

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// CRC32C of A||B from CRC32C(A), CRC32C(B) and |B| (as zlib's crc32_combine).
uint32_t crc_combine(uint32_t a, uint32_t b, uint64_t b_bytes) {
  return kernels::crc32c_math::shift(a, b_bytes, kernels::crc32c_math::kPowers.data()) ^ b;
}

// CRC32C of any length through the 16 MiB reference.
uint32_t crc32c_any(const char* p, uint64_t n) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  uint64_t piece = std::min<uint64_t>(n, kernels::kChecksumItemBytesMax);
  uint32_t crc = kernels::crc32c(u, piece);
  for (uint64_t at = piece; at < n; at += piece) {
    piece = std::min<uint64_t>(n - at, kernels::kChecksumItemBytesMax);
    crc = crc_combine(crc, kernels::crc32c(u + at, piece), piece);
  }
  return crc;
}

// The footer's chain: a CRC register fed the 4 little-endian bytes of each CRC, then the footer.
uint32_t chain_update(uint32_t reg, const char* p, size_t n) {
  return kernels::crc32c_math::raw_update(reg, reinterpret_cast<const uint8_t*>(p), n,
                                          kernels::crc32c_math::kTable.data());
}
uint32_t chain_crc(uint32_t reg, uint32_t crc) {
  char b[4];
  std::memcpy(b, &crc, sizeof b);
  return chain_update(reg, b, sizeof b);
}

struct Range {
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

// CRC32C of each range of `base` through `fn`: ranges cut into pieces the checksum op accepts,
// batches kept within its blob and item bounds, the pieces of a range combined.
Status checksum_ranges(const ChecksumFn& fn, const char* base, const std::vector<Range>& ranges,
                       std::vector<uint32_t>& crcs) {
  struct Piece {
    uint64_t offset;
    uint32_t bytes;
    size_t range;
  };
  std::vector<Piece> pieces;
  for (size_t r = 0; r < ranges.size(); ++r) {
    TALLY_ASSERT(ranges[r].bytes > 0);
    for (uint64_t at = 0; at < ranges[r].bytes; at += kernels::kChecksumItemBytesMax) {
      const uint64_t n = std::min<uint64_t>(ranges[r].bytes - at, kernels::kChecksumItemBytesMax);
      pieces.push_back({ranges[r].offset + at, static_cast<uint32_t>(n), r});
    }
  }
  std::vector<uint32_t> piece_crc(pieces.size());
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> lengths;
  for (size_t first = 0; first < pieces.size();) {
    const uint64_t window = pieces[first].offset;
    size_t last = first;
    while (last < pieces.size() && last - first < kernels::kBatchItemsMax &&
           pieces[last].offset + pieces[last].bytes - window <= kernels::kBatchBlobBytesMax) {
      ++last;
    }
    TALLY_ASSERT(last > first);
    offsets.clear();
    lengths.clear();
    for (size_t i = first; i < last; ++i) {
      offsets.push_back(pieces[i].offset - window);
      lengths.push_back(pieces[i].bytes);
    }
    kernels::ChecksumBatch b;
    b.blob = reinterpret_cast<const uint8_t*>(base + window);
    b.blob_bytes = pieces[last - 1].offset + pieces[last - 1].bytes - window;
    b.offsets = offsets.data();
    b.lengths = lengths.data();
    b.items = static_cast<uint32_t>(last - first);
    b.crc_out = piece_crc.data() + first;
    TALLY_RETURN_IF_ERROR(fn ? fn(b) : kernels::checksum_cpu_checked(b));
    first = last;
  }
  crcs.assign(ranges.size(), 0);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const bool first_piece = i == 0 || pieces[i - 1].range != pieces[i].range;
    uint32_t& c = crcs[pieces[i].range];
    c = first_piece ? piece_crc[i] : crc_combine(c, piece_crc[i], pieces[i].bytes);
  }
  return Status::ok();
}

}  // namespace

SnapshotWriter::SnapshotWriter(SnapshotMeta meta, ChecksumFn checksum)
    : meta_(std::move(meta)), checksum_(std::move(checksum)) {
  TALLY_ASSERT(meta_.membership.size() <= kMembershipBytesMax);
  TALLY_ASSERT(meta_.first_slot <= meta_.last_slot && meta_.last_slot < kernels::kSlotCount);
}

void SnapshotWriter::header(std::string& out) {
  TALLY_ASSERT(!header_done_);
  const size_t start = out.size();
  out.append(kHeaderMagic);
  put_u32(out, kSnapshotFormatVersion);
  put_u32(out, meta_.partition);
  put_u32(out, meta_.first_slot);
  put_u32(out, meta_.last_slot);
  put_u64(out, meta_.index);
  put_u64(out, meta_.term);
  put_u64(out, meta_.taken_at_ms);
  put_u64(out, meta_.cas_counter);
  put_u32(out, static_cast<uint32_t>(meta_.membership.size()));
  TALLY_ASSERT(out.size() - start == kSnapshotHeaderFixedBytes);
  out.append(meta_.membership);
  const uint32_t crc = crc32c_any(out.data() + start, out.size() - start);
  put_u32(out, crc);
  chain_ = chain_crc(chain_, crc);
  header_done_ = true;
}

size_t SnapshotWriter::open_chunk(std::string& buf) {
  const size_t at = buf.size();
  buf.append(kChunkFrameBytes, '\0');
  return at;
}

Status SnapshotWriter::seal_chunks(std::string& buf, const std::vector<size_t>& starts) {
  TALLY_ASSERT(header_done_ && !footer_done_ && !starts.empty());
  // Empty bodies (a slice that found nothing) are dropped with their frames: chunks are never empty.
  std::vector<Range> bodies;
  std::vector<size_t> frames;
  size_t to_at = starts[0];
  for (size_t i = 0; i < starts.size(); ++i) {
    const size_t from = starts[i];
    const size_t to = i + 1 < starts.size() ? starts[i + 1] : buf.size();
    TALLY_ASSERT(from >= to_at && from + kChunkFrameBytes <= to && to - from - kChunkFrameBytes <= kChunkBytesMax);
    if (to == from + kChunkFrameBytes) continue;
    if (to_at != from) std::memmove(buf.data() + to_at, buf.data() + from, to - from);
    frames.push_back(to_at);
    bodies.push_back({to_at + kChunkFrameBytes, to - from - kChunkFrameBytes});
    to_at += to - from;
  }
  buf.resize(to_at);
  if (bodies.empty()) return Status::ok();
  std::vector<uint32_t> crcs;
  TALLY_RETURN_IF_ERROR(checksum_ranges(checksum_, buf.data(), bodies, crcs));
  for (size_t i = 0; i < bodies.size(); ++i) {
    const uint32_t len = static_cast<uint32_t>(bodies[i].bytes);
    std::memcpy(buf.data() + frames[i], &len, sizeof len);
    std::memcpy(buf.data() + frames[i] + 4, &crcs[i], sizeof crcs[i]);
    chain_ = chain_crc(chain_, crcs[i]);
    ++chunks_;
  }
  return Status::ok();
}

void SnapshotWriter::footer(uint64_t entries, std::string& out) {
  TALLY_ASSERT(header_done_ && !footer_done_);
  const size_t start = out.size();
  put_u32(out, kEndOfChunks);
  put_u32(out, 0);
  out.append(kFooterMagic);
  put_u64(out, entries);
  put_u64(out, chunks_);
  TALLY_ASSERT(out.size() - start == kFooterCrcAt);
  put_u32(out, ~chain_update(chain_, out.data() + start, kFooterCrcAt));
  footer_done_ = true;
}

SnapshotReader::SnapshotReader(File& file, std::string name) : file_(file), name_(std::move(name)) {}

Status SnapshotReader::truncated(const std::string& why) const {
  return Status(Code::kOutOfRange, "snapshot " + name_ + " is truncated: " + why);
}

Status SnapshotReader::corrupt(const std::string& why) const {
  return Status::corruption("snapshot " + name_ + " is corrupt: " + why);
}

Status SnapshotReader::read(uint64_t offset, size_t n, std::string& into) {
  into.resize(n);
  auto got = file_.read_at(offset, into.data(), n);
  if (!got.is_ok()) return got.status();
  if (*got != n) return Status::io_error("snapshot " + name_ + ": short read at offset " + std::to_string(offset));
  return Status::ok();
}

Status SnapshotReader::open() {
  TALLY_ASSERT(!opened_);
  auto size = file_.size();
  if (!size.is_ok()) return size.status();
  size_ = *size;
  std::string h;
  TALLY_RETURN_IF_ERROR(read(0, std::min<uint64_t>(size_, kSnapshotHeaderFixedBytes), h));
  const size_t magic_bytes = std::min(h.size(), kHeaderMagic.size());  // a short file: its prefix
  if (std::string_view(h).substr(0, magic_bytes) != kHeaderMagic.substr(0, magic_bytes)) {
    return corrupt("no TALLYSNP magic at offset 0");
  }
  if (h.size() < kSnapshotHeaderFixedBytes) return truncated("ends inside the header");
  const uint32_t membership = get_u32(h.data() + kMembershipLengthAt);
  if (membership > kMembershipBytesMax) return corrupt("membership of " + std::to_string(membership) + " bytes");
  const uint64_t header_bytes = kSnapshotHeaderFixedBytes + membership + kSnapshotCrcBytes;
  if (size_ < header_bytes) return truncated("ends inside the header");
  std::string rest;
  TALLY_RETURN_IF_ERROR(read(kSnapshotHeaderFixedBytes, membership + kSnapshotCrcBytes, rest));
  h += rest;
  const uint32_t crc = get_u32(h.data() + header_bytes - kSnapshotCrcBytes);
  if (crc32c_any(h.data(), header_bytes - kSnapshotCrcBytes) != crc) return corrupt("header CRC mismatch");
  if (const uint32_t v = get_u32(h.data() + 8); v != kSnapshotFormatVersion) {
    return Status::unimplemented("snapshot " + name_ + " has format version " + std::to_string(v));
  }
  meta_.partition = get_u32(h.data() + 12);
  meta_.first_slot = get_u32(h.data() + 16);
  meta_.last_slot = get_u32(h.data() + 20);
  meta_.index = get_u64(h.data() + 24);
  meta_.term = get_u64(h.data() + 32);
  meta_.taken_at_ms = get_u64(h.data() + 40);
  meta_.cas_counter = get_u64(h.data() + 48);
  meta_.membership.assign(h.data() + kSnapshotHeaderFixedBytes, membership);
  if (meta_.first_slot > meta_.last_slot || meta_.last_slot >= kernels::kSlotCount) return corrupt("slot range");
  chain_ = chain_crc(chain_, crc);
  pos_ = header_bytes;

  bool footer_at_end = false;
  if (size_ >= pos_ + kSnapshotFooterBytes) {
    TALLY_RETURN_IF_ERROR(read(size_ - kSnapshotFooterBytes, kSnapshotFooterBytes, footer_));
    footer_at_end = get_u32(footer_.data()) == kEndOfChunks && get_u32(footer_.data() + 4) == 0 &&
                    std::string_view(footer_).substr(8, kFooterMagic.size()) == kFooterMagic;
  }
  if (!footer_at_end) return refuse_without_footer();
  chunks_end_ = size_ - kSnapshotFooterBytes;
  claimed_entries_ = get_u64(footer_.data() + 16);
  claimed_chunks_ = get_u64(footer_.data() + 24);
  // Unchecked until the end, so bounded by what the bytes between header and footer could hold.
  const uint64_t room = chunks_end_ - pos_;
  if (claimed_chunks_ > room / (kChunkFrameBytes + 1) || claimed_entries_ > room / kEntryRecordBytesMin) {
    return corrupt("footer counts exceed what the file can hold");
  }
  opened_ = true;
  return Status::ok();
}

// No footer at the end: a valid prefix (truncated) or damage (corrupt)? Walks the chunks to tell.
Status SnapshotReader::refuse_without_footer() {
  uint64_t pos = pos_;
  std::string frame, body;
  for (uint64_t chunks = 0;; ++chunks) {
    const std::string at = " at offset " + std::to_string(pos);
    if (pos == size_) return truncated("no footer after " + std::to_string(chunks) + " chunks");
    if (size_ - pos < 4) return truncated("ends inside a chunk frame" + at);
    TALLY_RETURN_IF_ERROR(read(pos, std::min<uint64_t>(size_ - pos, kChunkFrameBytes), frame));
    const uint32_t len = get_u32(frame.data());
    if (len == kEndOfChunks) {
      if (size_ - pos < kSnapshotFooterBytes) return truncated("ends inside the footer" + at);
      return corrupt("damaged footer, or bytes after it," + at);
    }
    if (frame.size() < kChunkFrameBytes) return truncated("ends inside a chunk frame" + at);
    if (len == 0 || len > kChunkBytesMax) return corrupt("chunk length " + std::to_string(len) + at);
    if (len > size_ - pos - kChunkFrameBytes) return truncated("ends inside the chunk" + at);
    TALLY_RETURN_IF_ERROR(read(pos + kChunkFrameBytes, len, body));
    if (crc32c_any(body.data(), len) != get_u32(frame.data() + 4)) return corrupt("chunk CRC mismatch" + at);
    pos += kChunkFrameBytes + len;
  }
}

Status SnapshotReader::check_footer() {
  const uint32_t want = ~chain_update(chain_, footer_.data(), kFooterCrcAt);
  if (get_u32(footer_.data() + kFooterCrcAt) != want) {
    return corrupt("footer CRC mismatch: a chunk missing, repeated, out of order or from another snapshot");
  }
  if (chunks_ != claimed_chunks_) return corrupt("the footer counts a different number of chunks");
  if (entries_ != claimed_entries_) return corrupt("the footer counts a different number of entries");
  return Status::ok();
}

Result<bool> SnapshotReader::next(std::string_view& body) {
  TALLY_ASSERT(opened_ && !done_);
  if (pos_ == chunks_end_) {
    TALLY_RETURN_IF_ERROR(check_footer());
    done_ = true;
    return false;
  }
  const std::string at = " at offset " + std::to_string(pos_);
  if (chunks_end_ - pos_ < kChunkFrameBytes) return corrupt("chunk frame runs into the footer" + at);
  std::string frame;
  TALLY_RETURN_IF_ERROR(read(pos_, kChunkFrameBytes, frame));
  const uint32_t len = get_u32(frame.data());
  if (len == kEndOfChunks) return corrupt("a footer before the end of the file" + at);
  if (len == 0 || len > kChunkBytesMax) return corrupt("chunk length " + std::to_string(len) + at);
  if (len > chunks_end_ - pos_ - kChunkFrameBytes) return corrupt("chunk runs past the footer" + at);
  TALLY_RETURN_IF_ERROR(read(pos_ + kChunkFrameBytes, len, body_));
  const uint32_t crc = get_u32(frame.data() + 4);
  if (crc32c_any(body_.data(), len) != crc) return corrupt("chunk CRC mismatch" + at);
  auto entries = count_entries(body_);
  if (!entries.is_ok()) return corrupt("chunk" + at + ": " + entries.status().message());
  entries_ += *entries;
  ++chunks_;
  chain_ = chain_crc(chain_, crc);
  chunk_at_ = pos_;
  pos_ += kChunkFrameBytes + len;
  body = body_;
  return true;
}

Result<SnapshotMeta> read_snapshot(File& file, const std::function<Status(std::string_view chunk_body)>& fn,
                                   SnapshotCounts* counts) {
  SnapshotReader r(file, "file");
  TALLY_RETURN_IF_ERROR(r.open());
  for (;;) {
    std::string_view body;
    auto more = r.next(body);
    if (!more.is_ok()) return more.status();
    if (!*more) break;
    TALLY_RETURN_IF_ERROR(fn(body));
  }
  if (counts != nullptr) *counts = r.counts();
  return r.meta();
}

}  // namespace tally::store
