// TALLY_HD marks functions that both the host compiler and nvcc's device pass must compile, so the
// CPU reference and the CUDA kernels share one definition of formats and hash arithmetic.
#pragma once

#if defined(__CUDACC__)
#define TALLY_HD __host__ __device__
#else
#define TALLY_HD
#endif
