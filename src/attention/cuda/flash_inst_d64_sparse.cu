// Explicit instantiation: head dim 64, sparse visit policy, both kernel bodies (mma.sync and sm_90a),
// and the GQA-packed policy (sm_90a only).
#include "attention/cuda/flash_kernel.cuh"
#include "attention/cuda/flash_kernel_sm90.cuh"
#include "attention/cuda/flash_launch.h"

namespace sacc::flash {
template cudaError_t launch_flash_forward<64, SparseIndexVisit>(const FlashParams&, int, cudaStream_t);
template cudaError_t launch_flash_forward_sm90<64, SparseIndexVisit>(const FlashParams&, const FlashTmaMaps&,
                                                                     int, cudaStream_t);
template cudaError_t launch_flash_forward_sm90<64, SparsePackedVisit>(const FlashParams&, const FlashTmaMaps&,
                                                                      int, cudaStream_t);
}  // namespace sacc::flash
