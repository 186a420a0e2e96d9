// resolve and merkle written once with Thrust, compiled twice: for CUDA (namespace thrust_cuda, by
// nvcc) and for OpenMP (namespace thrust_omp, by g++ -fopenmp). Scratch is asked for, then provided.
#pragma once

#include <cstddef>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::kernels {

// Caller-provided working memory (device memory for CUDA, host memory for OpenMP). The ops allocate
// nothing else: Thrust's own temporaries are carved out of it too.
struct ThrustScratch {
  void* base = nullptr;
  size_t bytes = 0;
  void* stream = nullptr;  // cudaStream_t for CUDA; ignored by OpenMP
  size_t* used_bytes_out = nullptr;  // optional: how much of the scratch the op used
  // Test hook: when nonzero, the ops may use at most this many bytes of the scratch although it
  // passed the size check, so a test can make the scratch run out inside Thrust.
  size_t arena_bytes_max = 0;
};

// Batch pointers live in the backend's memory space; batches have passed validate(). Scratch smaller
// than the query is kResourceExhausted; the query is an upper bound, so running out inside is a bug,
// reported as kResourceExhausted too (never an abort). On CUDA the ops only enqueue work on
// scratch.stream, except where a count must come back to the host; the caller synchronizes.
#define TALLY_THRUST_DECLARE_OPS(ns)                                  \
  namespace ns {                                                      \
  size_t resolve_scratch_bytes(const ResolveBatch& b);                \
  size_t merkle_scratch_bytes(const MerkleBatch& b);                  \
  Status resolve(const ResolveBatch& b, ThrustScratch scratch);       \
  Status merkle(const MerkleBatch& b, ThrustScratch scratch);         \
  }

TALLY_THRUST_DECLARE_OPS(thrust_omp)
TALLY_THRUST_DECLARE_OPS(thrust_cuda)

#undef TALLY_THRUST_DECLARE_OPS

}  // namespace tally::kernels
