// Which flash kernel runs: the body (Hopper wgmma/TMA or the portable mma.sync one) and whether the Hopper
// body packs two query heads of a KV group per CTA. Decided once by the attention selector
// (runtime/attention_selector.h) and passed down as a plain parameter; the kernels read no environment.
// Plain types: nvcc and the host compiler both include it.
#pragma once

namespace sacc {

enum class FlashBody {
  SM90,  // flash_kernel_sm90.cuh: warp-specialised, TMA + wgmma (sm_90a only)
  MMA,   // flash_kernel.cuh: mma.sync + cp.async (any sm_80+ GPU)
};

struct FlashKernelChoice {
  FlashBody body = FlashBody::SM90;
  bool gqa_pack = false;  // SM90 body, sparse index shared by an even number of query heads
};

}  // namespace sacc
