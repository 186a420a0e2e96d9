// Packing of offload batches into the DMA records of hw/README.md, and unpacking of the results.
#include "drivers/fpga_sim/layout.h"

#include <algorithm>

namespace tally::drivers::fpga {

using kernels::kNoReplica;
using kernels::kNoSource;
using kernels::kTallyReplicasMax;
static_assert(kTallyReplicasMax == kTallySlots, "the RTL has one slot per replica of the batch format");
static_assert(kNoSource == kNoSourceHw);

Status pack_checksum(const kernels::ChecksumBatch& b, std::span<ChecksumDescriptor> out) {
  TALLY_ASSERT(b.items == 0 || (b.offsets != nullptr && b.lengths != nullptr));
  if (out.size() < b.items) return Status::invalid("checksum: descriptor buffer too small");
  for (uint32_t i = 0; i < b.items; ++i) {
    TALLY_ASSERT(b.offsets[i] + b.lengths[i] <= b.blob_bytes);
    out[i] = ChecksumDescriptor{b.offsets[i], b.lengths[i], 0};
  }
  return Status::ok();
}

Status pack_tally(const kernels::TallyBatch& b, std::span<TallyRecord> out) {
  if (out.size() < tally_records(b)) return Status::invalid("tally: record buffer too small");
  for (uint32_t g = 0; g < b.groups; ++g) {
    TALLY_ASSERT((b.voter_mask[g] >> kTallySlots) == 0);
    TallyRecord& rec = out[g];
    rec = TallyRecord{};
    rec.mask = static_cast<uint8_t>(b.voter_mask[g]);
    for (uint32_t r = 0; r < kTallySlots; ++r) rec.key_low[r] = b.match[uint64_t{g} * kTallySlots + r];
  }
  for (uint32_t q = 0; q < b.reads; ++q) {
    TALLY_ASSERT((b.reply_mask[q] >> kTallySlots) == 0);
    TallyRecord& rec = out[uint64_t{b.groups} + q];
    rec = TallyRecord{};
    rec.mask = static_cast<uint8_t>(b.reply_mask[q]);
    rec.read_mode = 1;
    for (uint32_t r = 0; r < kTallySlots; ++r) {
      const uint64_t hlc = b.reply_hlc[uint64_t{q} * kTallySlots + r];
      const uint32_t node = b.reply_node[uint64_t{q} * kTallySlots + r];
      // The 96-bit key {hlc, node} split as {high 32 of hlc} : {low 32 of hlc, node}.
      rec.key_high[r] = static_cast<uint32_t>(hlc >> 32);
      rec.key_low[r] = (hlc << 32) | node;
    }
  }
  return Status::ok();
}

Status unpack_tally(std::span<const uint64_t> results, const kernels::TallyBatch& b) {
  if (results.size() < tally_records(b)) return Status::invalid("tally: result buffer too small");
  for (uint32_t g = 0; g < b.groups; ++g) b.commit_out[g] = results[g];
  for (uint32_t q = 0; q < b.reads; ++q) {
    const uint64_t r = results[uint64_t{b.groups} + q];
    // A read result is {stale[15:8], newest[7:0]}; anything above is a malfunction, not data.
    if ((r >> 16) != 0) return Status::corruption("tally: read result has stray bits");
    const uint8_t newest = static_cast<uint8_t>(r & 0xff);
    if (newest != kNoReplica && newest >= kTallySlots) return Status::corruption("tally: newest slot out of range");
    b.newest_out[q] = newest;
    b.stale_out[q] = static_cast<uint32_t>((r >> 8) & 0xff);
  }
  return Status::ok();
}

Status pack_lww(const kernels::LwwBatch& b, std::span<uint32_t> key_starts, std::span<LwwRecord> out,
                uint64_t* records) {
  TALLY_ASSERT(records != nullptr);
  if (key_starts.size() < uint64_t{b.keys} + 1) return Status::invalid("lww: key scratch too small");
  if (out.size() < lww_records_max(b)) return Status::invalid("lww: record buffer too small");
  // Counting sort by key keeps each key's items in index order, which the kernel's tie rule needs.
  std::fill(key_starts.begin(), key_starts.begin() + b.keys + 1, 0u);
  for (uint32_t i = 0; i < b.items; ++i) {
    TALLY_ASSERT(b.key_index[i] < b.keys);
    ++key_starts[b.key_index[i] + 1];
  }
  // key_starts[k] becomes the first record of key k; keys without items take one record each.
  uint64_t next = 0;
  for (uint32_t k = 0; k < b.keys; ++k) {
    const uint32_t count = key_starts[k + 1];
    key_starts[k] = static_cast<uint32_t>(next);
    next += std::max<uint32_t>(count, 1);
    if (count == 0) {
      out[key_starts[k]] = LwwRecord{b.current_hlc[k], 0, b.current_node[k], 0, 0, kLwwFirst | kLwwLast | kLwwEmpty};
    }
  }
  TALLY_ASSERT(next <= lww_records_max(b));
  key_starts[b.keys] = static_cast<uint32_t>(next);
  // key_starts[k] now walks forward as items of key k are placed; first/last come from the bounds.
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint32_t k = b.key_index[i];
    const uint32_t slot = key_starts[k]++;
    out[slot] = LwwRecord{b.current_hlc[k], b.hlc[i], b.current_node[k], b.node[i], i, 0};
  }
  // After placement key_starts[k] is the end of key k, so key k spans [end(k-1), end(k)).
  uint64_t begin = 0;
  for (uint32_t k = 0; k < b.keys; ++k) {
    const uint64_t end = std::max<uint64_t>(key_starts[k], begin + 1);
    out[begin].flags |= kLwwFirst;
    out[end - 1].flags |= kLwwLast;
    begin = end;
  }
  TALLY_ASSERT(begin == next);
  *records = next;
  return Status::ok();
}

Status unpack_lww(std::span<const LwwResult> results, const kernels::LwwBatch& b) {
  if (results.size() < b.keys) return Status::invalid("lww: result buffer too small");
  for (uint32_t k = 0; k < b.keys; ++k) {
    const LwwResult& r = results[k];
    if (r.source != kNoSource && r.source >= b.items) return Status::corruption("lww: winner index out of range");
    b.hlc_out[k] = r.hlc;
    b.node_out[k] = r.node;
    b.source_out[k] = r.source;
  }
  return Status::ok();
}

}  // namespace tally::drivers::fpga
