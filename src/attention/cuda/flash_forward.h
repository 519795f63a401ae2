// Host entry of the flash kernel family; compiles without CUDA headers (the stream is a cudaStream_t passed
// as void*). Callers go through the selector in attention/attention.h, which validates before calling these.
#pragma once

#include <cstddef>
#include <cstdint>

#include "attention/attention_params.h"
#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "core/status.h"

namespace sacc::flash {

// Device workspace for the sparse work order (per-CTA cost keys, item ids and the radix-sort scratch).
size_t sparse_work_order_bytes(int64_t num_work_items);

// Launches the kernel `choice` names for the head dim; maybe_index null = dense causal. Inputs must already
// be validated.
Status run_flash_forward(const AttentionParams& params, const SparseIndexView* maybe_index,
                         FlashKernelChoice choice, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace sacc::flash
