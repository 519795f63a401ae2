// Key splits for a suffix launch (FlashParams::q_begin > 0: the rest of a prompt after a restored prefix).
// A suffix of a few hundred rows over a 32K-token prefix is a handful of query blocks per head, far fewer
// CTAs than SMs, each walking every key. Splitting each query block's keys over S CTAs fills the GPU; every
// split writes its normalised O (bf16) and LSE to a workspace, and combine_key_splits() merges them with the
// weights exp(LSE_s - LSE). The result differs from one unsplit pass by the bf16 rounding of the partial O.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "attention/cuda/flash_params.h"

namespace sacc::flash {

// Splits for a dense launch of `items` work items from p.q_begin on a GPU of `num_sms` SMs whose workspace
// holds `workspace_bytes`: about one CTA per SM, at least kMinSplitBlocks key blocks a split; 1 = no split.
int suffix_key_splits(const FlashParams& p, int items, int num_sms, int head_dim, size_t workspace_bytes);

// Workspace bytes of `splits` partial outputs: O [splits, n, Hq, d] bf16 and LSE [splits, Hq, n] fp32.
size_t suffix_split_bytes(const FlashParams& p, int splits, int head_dim);

// p with O and LSE pointed into `workspace` for `splits` splits (p.o / p.maybe_lse are the final targets).
FlashParams split_params(const FlashParams& p, int splits, int head_dim, void* workspace);

// Merges the splits that split_params(p, ...) wrote into p's O (and LSE when p.maybe_lse is set).
cudaError_t combine_key_splits(const FlashParams& p, int splits, int head_dim, const void* workspace,
                               cudaStream_t stream);

}  // namespace sacc::flash
