// The Thrust ops built for Thrust's OpenMP backend: tested on the CPU in CI, same code as CUDA's.
#include <thrust/system/omp/execution_policy.h>

#define TALLY_THRUST_NS thrust_omp
#define TALLY_THRUST_POLICY(alloc, stream) thrust::omp::par(alloc)
#define TALLY_THRUST_NOSYNC_POLICY(alloc, stream) thrust::omp::par(alloc)
#define TALLY_THRUST_SCRATCH_ON_HOST 1
#include "kernels/thrust/thrust_ops.inl"
