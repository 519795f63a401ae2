// Explicit instantiation: head dim 128, dense visit policy.
#include "attention/cuda/flash_kernel.cuh"
#include "attention/cuda/flash_launch.h"

namespace sacc::flash {
template cudaError_t launch_flash_forward<128, DenseCausalVisit>(const FlashParams&, int, cudaStream_t);
}  // namespace sacc::flash
