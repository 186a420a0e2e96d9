// CUDA kernels: CRC32C with one warp per range (lanes split the range and combine in GF(2)),
// CRC16 key slots with one thread per key, quorum tallies with one thread per group or read.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "kernels/cpu/crc32c_math.h"
#include "kernels/cpu/slot.h"
#include "kernels/cuda/kernels.h"

namespace tally::kernels::cuda {
namespace {

constexpr uint32_t kWarpLanes = 32;
constexpr uint32_t kBlockThreads = 256;
constexpr uint32_t kWarpsPerBlock = kBlockThreads / kWarpLanes;

// Every runtime call before a launch was checked where it returned, so whatever the thread's
// last-error slot still holds is stale and would be blamed on this launch: cleared first. A sticky
// error (a lost context) is not lost this way: the launch itself fails with it again.
void clear_stale_error() { static_cast<void>(cudaGetLastError()); }

Status launch_status(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::ok();
  return Status::unavailable(std::string(what) + ": " + cudaGetErrorString(err));
}

// Slicing-by-4 tables and x^(2^k) powers, built per block in shared memory (the host's constexpr
// tables are not visible to device code).
struct CrcShared {
  uint32_t table[4][256];
  uint32_t powers[64];
};

__device__ void build_crc_shared(CrcShared& s) {
  for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ crc32c_math::kPoly : c >> 1;
    s.table[0][i] = c;
  }
  if (threadIdx.x == 0) {
    uint32_t p = 0x40000000u;
    for (int k = 0; k < 64; ++k) {
      s.powers[k] = p;
      p = crc32c_math::multiply(p, p);
    }
  }
  __syncthreads();
  for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) {
    for (int t = 1; t < 4; ++t) s.table[t][i] = (s.table[t - 1][i] >> 8) ^ s.table[0][s.table[t - 1][i] & 0xff];
  }
  __syncthreads();
}

// Grid-stride over items, one warp per item at a time: the per-block table build is paid once per
// block rather than once per eight items.
__global__ void checksum_kernel(ChecksumBatch b) {
  __shared__ CrcShared s;
  build_crc_shared(s);
  const uint32_t lane = threadIdx.x % kWarpLanes;
  const uint64_t warps_total = uint64_t{gridDim.x} * kWarpsPerBlock;
  for (uint64_t item = uint64_t{blockIdx.x} * kWarpsPerBlock + threadIdx.x / kWarpLanes; item < b.items;
       item += warps_total) {
    const uint64_t n = b.lengths[item];
    const uint8_t* base = b.blob + b.offsets[item];
    const uint64_t first = n * lane / kWarpLanes;
    const uint64_t last = n * (lane + 1) / kWarpLanes;
    uint32_t raw = crc32c_math::raw_update_slice4(0, base + first, last - first, s.table);
    raw = crc32c_math::shift(raw, n - last, s.powers);
    for (uint32_t offset = kWarpLanes / 2; offset > 0; offset /= 2) raw ^= __shfl_xor_sync(0xffffffffu, raw, offset);
    if (lane == 0) b.crc_out[item] = crc32c_math::finish(raw, n, s.powers);
  }
}

__global__ void partition_kernel(PartitionBatch b) {
  __shared__ uint16_t table[256];
  for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int k = 0; k < 8; ++k) crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    table[i] = crc;
  }
  __syncthreads();
  for (uint64_t i = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < b.items; i += uint64_t{gridDim.x} * blockDim.x) {
    const uint8_t* key = b.blob + b.offsets[i];
    uint32_t first = 0, last = b.lengths[i];
    // The first {...} with at least one byte inside is the hash tag (slot.h's hash_tag).
    uint32_t open = 0;
    while (open < last && key[open] != '{') ++open;
    if (open < last) {
      uint32_t close = open + 1;
      while (close < last && key[close] != '}') ++close;
      if (close < last && close > open + 1) first = open + 1, last = close;
    }
    uint16_t crc = 0;
    for (uint32_t j = first; j < last; ++j) crc = static_cast<uint16_t>((crc << 8) ^ table[((crc >> 8) ^ key[j]) & 0xff]);
    const uint32_t slot = crc & (kSlotCount - 1);
    b.slot_out[i] = static_cast<uint16_t>(slot);
    b.partition_out[i] = b.slot_to_partition[slot];
  }
}

// Threads [0, groups) compute commit indexes exactly as tally_commit_cpu; the rest do the reads.
__global__ void tally_kernel(TallyBatch b) {
  const uint64_t t = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (t < b.groups) {
    uint64_t v[kTallyReplicasMax];
    uint32_t n = 0;
    for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
      if (b.voter_mask[t] & (1u << r)) v[n++] = b.match[t * kTallyReplicasMax + r];
    }
    // Insertion sort, descending; the (n/2)-th largest is held by a majority.
    for (uint32_t x = 1; x < n; ++x) {
      const uint64_t key = v[x];
      uint32_t y = x;
      for (; y > 0 && v[y - 1] < key; --y) v[y] = v[y - 1];
      v[y] = key;
    }
    b.commit_out[t] = n == 0 ? 0 : v[n / 2];
    return;
  }
  const uint64_t q = t - b.groups;
  if (q >= b.reads) return;
  const uint32_t mask = b.reply_mask[q];
  const uint64_t base = q * kTallyReplicasMax;
  uint32_t newest = kNoReplica;
  for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
    if (!(mask & (1u << r))) continue;
    if (newest == kNoReplica || b.reply_hlc[base + r] > b.reply_hlc[base + newest] ||
        (b.reply_hlc[base + r] == b.reply_hlc[base + newest] && b.reply_node[base + r] > b.reply_node[base + newest])) {
      newest = r;
    }
  }
  uint32_t stale = 0;
  if (newest != kNoReplica) {
    for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
      if ((mask & (1u << r)) && (b.reply_hlc[base + r] != b.reply_hlc[base + newest] ||
                                 b.reply_node[base + r] != b.reply_node[base + newest])) {
        stale |= 1u << r;
      }
    }
  }
  b.newest_out[q] = static_cast<uint8_t>(newest);
  b.stale_out[q] = stale;
}

// Enough blocks to fill any current GPU several times over; grid-stride loops cover the rest.
constexpr uint64_t kGridBlocksMax = 4096;

uint32_t blocks_for(uint64_t threads) { return static_cast<uint32_t>((threads + kBlockThreads - 1) / kBlockThreads); }

}  // namespace

Status checksum(const ChecksumBatch& v, void* stream) {
  TALLY_ASSERT(v.items <= kBatchItemsMax);
  if (v.items == 0) return Status::ok();
  const uint32_t blocks = static_cast<uint32_t>(std::min<uint64_t>(kGridBlocksMax, (uint64_t{v.items} + kWarpsPerBlock - 1) / kWarpsPerBlock));
  clear_stale_error();
  checksum_kernel<<<blocks, kBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(v);
  return launch_status("checksum kernel");
}

Status partition(const PartitionBatch& v, void* stream) {
  TALLY_ASSERT(v.items <= kBatchItemsMax);
  if (v.items == 0) return Status::ok();
  clear_stale_error();
  partition_kernel<<<std::min<uint32_t>(kGridBlocksMax, blocks_for(v.items)), kBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(v);
  return launch_status("partition kernel");
}

Status tally(const TallyBatch& v, void* stream) {
  TALLY_ASSERT(v.groups <= kBatchItemsMax && v.reads <= kBatchItemsMax);
  const uint64_t threads = uint64_t{v.groups} + v.reads;
  if (threads == 0) return Status::ok();
  clear_stale_error();
  tally_kernel<<<blocks_for(threads), kBlockThreads, 0, static_cast<cudaStream_t>(stream)>>>(v);
  return launch_status("tally kernel");
}

}  // namespace tally::kernels::cuda
