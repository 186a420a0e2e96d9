// The Thrust ops (resolve, merkle) built for CUDA; the same source as the OpenMP build.
#include <cuda_runtime.h>
#include <thrust/system/cuda/execution_policy.h>

#define TALLY_THRUST_NS thrust_cuda
#define TALLY_THRUST_POLICY(alloc, stream) thrust::cuda::par(alloc).on(static_cast<cudaStream_t>(stream))
#define TALLY_THRUST_NOSYNC_POLICY(alloc, stream) thrust::cuda::par_nosync(alloc).on(static_cast<cudaStream_t>(stream))
#define TALLY_THRUST_SCRATCH_ON_HOST 0
#include "kernels/thrust/thrust_ops.inl"
