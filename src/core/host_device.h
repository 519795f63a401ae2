// SACC_HOST_DEVICE marks arithmetic the CPU and GPU code must share (the random weights, the plan's slot
// geometry, the flash kernels' polynomial exponential): __host__ __device__ under nvcc, a plain host function
// elsewhere.
#pragma once

#if defined(__CUDACC__)
#define SACC_HOST_DEVICE __host__ __device__
#else
#define SACC_HOST_DEVICE
#endif
