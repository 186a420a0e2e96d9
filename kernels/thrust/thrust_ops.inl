// Body of the Thrust ops; included by thrust_omp.cc and kernels/cuda/thrust_cuda.cu, which define
// TALLY_THRUST_NS (the namespace), TALLY_THRUST_POLICY(alloc, stream) (the policy of calls whose
// result the host reads: they wait for the device), TALLY_THRUST_NOSYNC_POLICY(alloc, stream) (the
// policy of every other call: it only enqueues, so the submitting thread can stage the other slot's
// batch while this one runs) and TALLY_THRUST_SCRATCH_ON_HOST (1 when scratch is host memory).
#include <thrust/binary_search.h>
#include <thrust/copy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/constant_iterator.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/iterator/zip_iterator.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/tuple.h>

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "kernels/cpu/mix.h"
#include "kernels/thrust/thrust_ops.h"

namespace tally::kernels::TALLY_THRUST_NS {
namespace {

constexpr size_t kAlignBytes = 256;
// Per-item scratch upper bounds (measured high-water on the OpenMP backend: resolve 44, OR-set 20,
// merkle 64 bytes per item) with room for CUDA's radix-sort double buffers, plus a fixed reserve.
constexpr size_t kResolveScratchPerItemBytes = 72;
constexpr size_t kOrSetScratchPerItemBytes = 48;
constexpr size_t kMerkleScratchPerItemBytes = 104;
constexpr size_t kThrustTempReserveBytes = size_t{8} << 20;

// A bump allocator over the caller's scratch, safe to call from several threads at once: Thrust's
// OpenMP sort allocates its merge buffers inside a parallel region, one per thread.
//
// Running out means the scratch query is too small: a bug, but one that must cost a batch, not the
// process. Where the scratch is device memory (CUDA) every allocation comes from the host thread
// that called the op, so the allocator throws and the op returns kResourceExhausted. Where it is host
// memory (OpenMP) an allocation may come from inside a parallel region, where a throw cannot be
// caught and would terminate the process, so the arena lends heap memory instead, lets the op
// finish, and the op still returns kResourceExhausted.
class Arena {
 public:
  Arena(void* base, size_t bytes) : base_(static_cast<char*>(base)), bytes_(bytes) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  template <typename T>
  T* take(size_t count) { return reinterpret_cast<T*>(take_bytes(count * sizeof(T))); }
  char* take_bytes(size_t n) {
    size_t used = used_.load(std::memory_order_relaxed);
    while (true) {
      const size_t at = (used + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
      if (at > bytes_ || bytes_ - at < n) return overflow(n);
      if (used_.compare_exchange_weak(used, at + n, std::memory_order_relaxed)) return base_ + at;
    }
  }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  bool exhausted() const { return exhausted_.load(std::memory_order_relaxed); }

 private:
  char* overflow(size_t n) {
    exhausted_.store(true, std::memory_order_relaxed);
#if TALLY_THRUST_SCRATCH_ON_HOST
    std::lock_guard<std::mutex> lock(overflow_mu_);
    overflow_.push_back(std::make_unique<char[]>(n == 0 ? 1 : n));
    return overflow_.back().get();
#else
    throw std::bad_alloc();
#endif
  }

  char* base_;
  size_t bytes_;
  std::atomic<size_t> used_{0};
  std::atomic<bool> exhausted_{false};
#if TALLY_THRUST_SCRATCH_ON_HOST
  std::mutex overflow_mu_;
  std::vector<std::unique_ptr<char[]>> overflow_;
#endif
};

// Thrust's allocator concept over the arena; memory is returned when the op ends.
struct ArenaAllocator {
  using value_type = char;
  Arena* arena;
  char* allocate(std::ptrdiff_t n) { return arena->take_bytes(static_cast<size_t>(n)); }
  void deallocate(char*, size_t) {}
};

// Sorted segments of items per key, shared by the three resolve forms.
struct Segments {
  uint32_t* order = nullptr;   // item indices sorted by key
  uint32_t* keys = nullptr;    // distinct keys present, ascending
  uint32_t* starts = nullptr;  // first position in order of each distinct key
  uint32_t* counts = nullptr;
  uint32_t distinct = 0;
};

template <typename Policy, typename SyncPolicy>
Segments make_segments(Policy policy, SyncPolicy sync, Arena& arena, const uint32_t* key_index, uint32_t items) {
  Segments s;
  s.order = arena.take<uint32_t>(items);
  uint32_t* sorted_keys = arena.take<uint32_t>(items);
  s.keys = arena.take<uint32_t>(items);
  s.starts = arena.take<uint32_t>(items);
  s.counts = arena.take<uint32_t>(items);
  thrust::copy(policy, key_index, key_index + items, sorted_keys);
  thrust::sequence(policy, s.order, s.order + items);
  thrust::stable_sort_by_key(policy, sorted_keys, sorted_keys + items, s.order);
  // The number of distinct keys comes back to the host: this call waits.
  auto end = thrust::reduce_by_key(sync, sorted_keys, sorted_keys + items, thrust::constant_iterator<uint32_t>(1),
                                   s.keys, s.counts);
  s.distinct = static_cast<uint32_t>(end.first - s.keys);
  thrust::exclusive_scan(policy, s.counts, s.counts + s.distinct, s.starts);
  return s;
}

TALLY_HD inline bool stamp_greater(uint64_t ha, uint32_t na, uint64_t hb, uint32_t nb) {
  return ha > hb || (ha == hb && na > nb);
}

struct LwwCopyCurrent {
  LwwBatch b;
  TALLY_HD void operator()(uint32_t k) const {
    b.hlc_out[k] = b.current_hlc[k];
    b.node_out[k] = b.current_node[k];
    b.source_out[k] = kNoSource;
  }
};

// One thread per distinct key walks its items in index order (stable sort): identical to the
// reference's sequential "strictly greater replaces".
struct LwwMergeKey {
  LwwBatch b;
  Segments s;
  TALLY_HD void operator()(uint32_t d) const {
    const uint32_t k = s.keys[d];
    uint64_t hlc = b.current_hlc[k];
    uint32_t node = b.current_node[k];
    uint32_t source = kNoSource;
    for (uint32_t j = s.starts[d]; j < s.starts[d] + s.counts[d]; ++j) {
      const uint32_t i = s.order[j];
      if (stamp_greater(b.hlc[i], b.node[i], hlc, node)) {
        hlc = b.hlc[i];
        node = b.node[i];
        source = i;
      }
    }
    b.hlc_out[k] = hlc;
    b.node_out[k] = node;
    b.source_out[k] = source;
  }
};

struct PnCopyCurrent {
  PnCounterBatch b;
  TALLY_HD void operator()(uint64_t w) const {
    b.p_out[w] = b.current_p[w];
    b.n_out[w] = b.current_n[w];
  }
};

// One thread per (distinct key, node slot).
struct PnMergeSlot {
  PnCounterBatch b;
  Segments s;
  TALLY_HD void operator()(uint64_t t) const {
    const uint32_t d = static_cast<uint32_t>(t / kCrdtNodesMax);
    const uint32_t slot = static_cast<uint32_t>(t % kCrdtNodesMax);
    const uint64_t dst = uint64_t{s.keys[d]} * kCrdtNodesMax + slot;
    uint64_t p = b.p_out[dst];
    uint64_t n = b.n_out[dst];
    for (uint32_t j = s.starts[d]; j < s.starts[d] + s.counts[d]; ++j) {
      const uint64_t src = uint64_t{s.order[j]} * kCrdtNodesMax + slot;
      p = b.p[src] > p ? b.p[src] : p;
      n = b.n[src] > n ? b.n[src] : n;
    }
    b.p_out[dst] = p;
    b.n_out[dst] = n;
  }
};

struct PnValue {
  PnCounterBatch b;
  TALLY_HD void operator()(uint32_t k) const {
    uint64_t value = 0;
    for (uint32_t s = 0; s < kCrdtNodesMax; ++s) {
      value += b.p_out[uint64_t{k} * kCrdtNodesMax + s] - b.n_out[uint64_t{k} * kCrdtNodesMax + s];
    }
    b.value_out[k] = static_cast<int64_t>(value);
  }
};

// Order of OR-set entries by identity (key, element, node, seq), then side.
struct OrSetLess {
  OrSetBatch b;
  TALLY_HD bool operator()(uint32_t x, uint32_t y) const {
    if (b.key_index[x] != b.key_index[y]) return b.key_index[x] < b.key_index[y];
    if (b.element[x] != b.element[y]) return b.element[x] < b.element[y];
    if (b.dot_node[x] != b.dot_node[y]) return b.dot_node[x] < b.dot_node[y];
    if (b.dot_seq[x] != b.dot_seq[y]) return b.dot_seq[x] < b.dot_seq[y];
    return b.side[x] < b.side[y];
  }
};

struct OrSetRunStart {
  OrSetBatch b;
  const uint32_t* order;
  TALLY_HD bool operator()(uint32_t pos) const {
    if (pos == 0) return true;
    const uint32_t x = order[pos - 1], y = order[pos];
    return b.key_index[x] != b.key_index[y] || b.element[x] != b.element[y] || b.dot_node[x] != b.dot_node[y] ||
           b.dot_seq[x] != b.dot_seq[y];
  }
};

// One thread per run of equal identities: the sides present decide every entry of the run.
struct OrSetDecideRun {
  OrSetBatch b;
  const uint32_t* order;
  const uint32_t* run_starts;
  uint32_t runs;
  uint32_t items;
  TALLY_HD void operator()(uint32_t r) const {
    const uint32_t first = run_starts[r];
    const uint32_t last = r + 1 < runs ? run_starts[r + 1] : items;
    uint32_t present = 0;
    for (uint32_t j = first; j < last; ++j) present |= 1u << b.side[order[j]];
    for (uint32_t j = first; j < last; ++j) {
      const uint32_t i = order[j];
      const uint64_t* other_vv = b.side[i] == 0 ? b.incoming_vv : b.current_vv;
      const bool unseen = other_vv[uint64_t{b.key_index[i]} * kCrdtNodesMax + b.dot_node[i]] < b.dot_seq[i];
      b.keep_out[i] = present == 3 ? (b.side[i] == 0 ? 1 : 0) : (unseen ? 1 : 0);
    }
  }
};

template <typename Policy, typename SyncPolicy>
void resolve_with(Policy policy, SyncPolicy sync, Arena& arena, const ResolveBatch& rb) {
  switch (rb.kind) {
    case ResolveKind::kLww: {
      const LwwBatch& b = rb.lww;
      thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(b.keys),
                       LwwCopyCurrent{b});
      if (b.items == 0) return;
      const Segments s = make_segments(policy, sync, arena, b.key_index, b.items);
      thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(s.distinct),
                       LwwMergeKey{b, s});
      return;
    }
    case ResolveKind::kPnCounter: {
      const PnCounterBatch& b = rb.pn;
      const uint64_t words = uint64_t{b.keys} * kCrdtNodesMax;
      thrust::for_each(policy, thrust::counting_iterator<uint64_t>(0), thrust::counting_iterator<uint64_t>(words),
                       PnCopyCurrent{b});
      if (b.items > 0) {
        const Segments s = make_segments(policy, sync, arena, b.key_index, b.items);
        thrust::for_each(policy, thrust::counting_iterator<uint64_t>(0),
                         thrust::counting_iterator<uint64_t>(uint64_t{s.distinct} * kCrdtNodesMax), PnMergeSlot{b, s});
      }
      thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(b.keys),
                       PnValue{b});
      return;
    }
    case ResolveKind::kOrSet: {
      const OrSetBatch& b = rb.orset;
      if (b.items == 0) return;
      uint32_t* order = arena.take<uint32_t>(b.items);
      uint32_t* run_starts = arena.take<uint32_t>(b.items);
      thrust::sequence(policy, order, order + b.items);
      thrust::sort(policy, order, order + b.items, OrSetLess{b});
      uint32_t* end = thrust::copy_if(sync, thrust::counting_iterator<uint32_t>(0),
                                      thrust::counting_iterator<uint32_t>(b.items), run_starts,
                                      OrSetRunStart{b, order});
      const uint32_t runs = static_cast<uint32_t>(end - run_starts);
      thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(runs),
                       OrSetDecideRun{b, order, run_starts, runs, b.items});
      return;
    }
  }
}

// Merkle: composite bucket key = partition << depth | bucket.
struct LeafBucket {
  MerkleBuildBatch b;
  TALLY_HD uint32_t operator()(uint32_t i) const {
    return (b.leaf_partition[i] << b.depth) | static_cast<uint32_t>(b.key_hash[i] >> (64 - b.depth));
  }
};

struct LeafHash {
  MerkleBuildBatch b;
  TALLY_HD thrust::tuple<uint64_t, uint64_t> operator()(uint32_t i) const {
    return thrust::make_tuple(merkle_leaf(b.key_hash[i], b.version_hash[i]), uint64_t{1});
  }
};

struct SumPair {
  TALLY_HD thrust::tuple<uint64_t, uint64_t> operator()(const thrust::tuple<uint64_t, uint64_t>& a,
                                                       const thrust::tuple<uint64_t, uint64_t>& c) const {
    return thrust::make_tuple(thrust::get<0>(a) + thrust::get<0>(c), thrust::get<1>(a) + thrust::get<1>(c));
  }
};

// Bucket sums are unique per composite key; leaf counts of one partition spread over its buckets,
// so the bucket that starts a partition's run adds them all (runs are sorted by partition).
struct ScatterBuckets {
  MerkleBuildBatch b;
  const uint32_t* ckeys;
  const uint64_t* sums;
  const uint64_t* counts;
  uint32_t distinct;
  TALLY_HD void operator()(uint32_t d) const {
    const uint64_t words = merkle_tree_words(b.depth);
    const uint32_t p = ckeys[d] >> b.depth;
    const uint32_t bucket = ckeys[d] & ((1u << b.depth) - 1);
    b.tree_out[p * words + (uint64_t{1} << b.depth) + bucket] = sums[d];
    if (d > 0 && (ckeys[d - 1] >> b.depth) == p) return;
    uint64_t leaves = 0;
    for (uint32_t e = d; e < distinct && (ckeys[e] >> b.depth) == p; ++e) leaves += counts[e];
    b.tree_out[p * words] = leaves;
  }
};

struct BuildLevel {
  MerkleBuildBatch b;
  uint32_t level;
  TALLY_HD void operator()(uint64_t t) const {
    const uint64_t words = merkle_tree_words(b.depth);
    const uint64_t p = t >> level;
    const uint64_t j = (uint64_t{1} << level) + (t & ((uint64_t{1} << level) - 1));
    uint64_t* tree = b.tree_out + p * words;
    tree[j] = merkle_node(tree[2 * j], tree[2 * j + 1]);
  }
};

struct DiffPartition {
  MerkleDiffBatch b;
  TALLY_HD void operator()(uint32_t p) const {
    const uint64_t words = merkle_tree_words(b.depth);
    const uint64_t buckets = uint64_t{1} << b.depth;
    const uint64_t* ta = b.tree_a + p * words;
    const uint64_t* tb = b.tree_b + p * words;
    uint64_t stack[kMerkleDepthMax + 2];
    uint32_t top = 0;
    uint32_t count = 0;
    stack[top++] = 1;
    while (top > 0) {
      const uint64_t j = stack[--top];
      if (ta[j] == tb[j]) continue;
      if (j >= buckets) {
        if (count < b.diff_max) b.diff_out[uint64_t{p} * b.diff_max + count] = static_cast<uint32_t>(j - buckets);
        ++count;
        continue;
      }
      stack[top++] = 2 * j + 1;
      stack[top++] = 2 * j;
    }
    b.diff_count_out[p] = count;
    for (uint32_t c = count; c < b.diff_max; ++c) b.diff_out[uint64_t{p} * b.diff_max + c] = kNoSource;
  }
};

template <typename Policy, typename SyncPolicy>
void merkle_with(Policy policy, SyncPolicy sync, Arena& arena, const MerkleBatch& m) {
  if (m.is_diff) {
    thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0),
                     thrust::counting_iterator<uint32_t>(m.diff.partitions), DiffPartition{m.diff});
    return;
  }
  const MerkleBuildBatch& b = m.build;
  const uint64_t words = merkle_tree_words(b.depth);
  thrust::fill(policy, b.tree_out, b.tree_out + b.partitions * words, uint64_t{0});
  if (b.items > 0) {
    uint32_t* ckeys = arena.take<uint32_t>(b.items);
    uint32_t* order = arena.take<uint32_t>(b.items);
    uint32_t* out_keys = arena.take<uint32_t>(b.items);
    uint64_t* sums = arena.take<uint64_t>(b.items);
    uint64_t* counts = arena.take<uint64_t>(b.items);
    thrust::transform(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(b.items),
                      ckeys, LeafBucket{b});
    thrust::sequence(policy, order, order + b.items);
    thrust::sort_by_key(policy, ckeys, ckeys + b.items, order);
    auto values = thrust::make_transform_iterator(order, LeafHash{b});
    auto end = thrust::reduce_by_key(sync, ckeys, ckeys + b.items, values, out_keys,
                                     thrust::make_zip_iterator(thrust::make_tuple(sums, counts)),
                                     thrust::equal_to<uint32_t>(), SumPair{});
    const uint32_t distinct = static_cast<uint32_t>(end.first - out_keys);
    thrust::for_each(policy, thrust::counting_iterator<uint32_t>(0), thrust::counting_iterator<uint32_t>(distinct),
                     ScatterBuckets{b, out_keys, sums, counts, distinct});
  }
  for (int32_t level = static_cast<int32_t>(b.depth) - 1; level >= 0; --level) {
    const uint64_t nodes = uint64_t{b.partitions} << level;
    thrust::for_each(policy, thrust::counting_iterator<uint64_t>(0), thrust::counting_iterator<uint64_t>(nodes),
                     BuildLevel{b, static_cast<uint32_t>(level)});
  }
}

// The bytes the arena may hand out: the scratch, or less under the test hook.
size_t arena_bytes(const ThrustScratch& s) {
  return s.arena_bytes_max != 0 && s.arena_bytes_max < s.bytes ? s.arena_bytes_max : s.bytes;
}

template <typename Fn>
Status guarded(const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return Status::unavailable(std::string(what) + ": " + e.what());
  }
  return Status::ok();
}

}  // namespace

size_t resolve_scratch_bytes(const ResolveBatch& b) {
  const size_t per_item = b.kind == ResolveKind::kOrSet ? kOrSetScratchPerItemBytes : kResolveScratchPerItemBytes;
  return size_t{b.items()} * per_item + kThrustTempReserveBytes;
}

size_t merkle_scratch_bytes(const MerkleBatch& b) {
  if (b.is_diff) return kAlignBytes;
  return size_t{b.build.items} * kMerkleScratchPerItemBytes + kThrustTempReserveBytes;
}

Status resolve(const ResolveBatch& b, ThrustScratch scratch) {
  TALLY_ASSERT(scratch.base != nullptr || scratch.bytes == 0);
  TALLY_ASSERT(b.items() <= kBatchItemsMax);
  if (scratch.bytes < resolve_scratch_bytes(b)) return Status::exhausted("resolve: scratch smaller than queried");
  Arena arena(scratch.base, arena_bytes(scratch));
  ArenaAllocator alloc{&arena};
  Status st = guarded("resolve", [&] {
    resolve_with(TALLY_THRUST_NOSYNC_POLICY(alloc, scratch.stream), TALLY_THRUST_POLICY(alloc, scratch.stream), arena, b);
  });
  if (scratch.used_bytes_out != nullptr) *scratch.used_bytes_out = arena.used();
  if (arena.exhausted()) return Status::exhausted("resolve: thrust scratch ran out (the scratch query is too small)");
  return st;
}

Status merkle(const MerkleBatch& b, ThrustScratch scratch) {
  TALLY_ASSERT(scratch.base != nullptr || scratch.bytes == 0);
  TALLY_ASSERT(b.items() <= kBatchItemsMax);
  if (scratch.bytes < merkle_scratch_bytes(b)) return Status::exhausted("merkle: scratch smaller than queried");
  Arena arena(scratch.base, arena_bytes(scratch));
  ArenaAllocator alloc{&arena};
  Status st = guarded("merkle", [&] {
    merkle_with(TALLY_THRUST_NOSYNC_POLICY(alloc, scratch.stream), TALLY_THRUST_POLICY(alloc, scratch.stream), arena, b);
  });
  if (scratch.used_bytes_out != nullptr) *scratch.used_bytes_out = arena.used();
  if (arena.exhausted()) return Status::exhausted("merkle: thrust scratch ran out (the scratch query is too small)");
  return st;
}

}  // namespace tally::kernels::TALLY_THRUST_NS
