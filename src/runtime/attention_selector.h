// The one attention selector: every decision of which attention a prefill runs — the method (dense or sparse
// flash, or a baseline; AUTO resolved by its break-even length), the flash kernel body (Hopper SM90 or the
// portable mma.sync one), GQA packing, the index geometry per layer and the device workspace — is made here
// and handed down as plain parameters (FlashKernelChoice, IndexGeometry, byte counts). The environment
// overrides SACC_FLASH_BODY and SACC_FLASH_GQA_PACK are read here, once per process, and nowhere else.
// The decisions are pure functions of their inputs (unit-tested on the CPU); only attention_overrides(),
// flash_kernel_for_device() and attention_workspace() look outside (environment, device, CUDA build).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "attention/flash_choice.h"
#include "attention/sparse_index.h"
#include "core/status.h"
#include "model/model_config.h"
#include "runtime/backend.h"

namespace sacc {

// What the environment asks for, for A/B measurements: SACC_FLASH_BODY=mma|sm90 forces a body (sm90 only
// where the device has it), SACC_FLASH_GQA_PACK=0 turns GQA packing off.
struct AttentionOverrides {
  std::optional<FlashBody> flash_body;
  bool gqa_pack = true;
};

// Pure: the overrides the variables' values ask for (null or empty = unset); other values are errors.
Result<AttentionOverrides> parse_attention_overrides(const char* flash_body, const char* gqa_pack);

// The process's overrides: the environment read on first use (a bad value is logged and ignored).
const AttentionOverrides& attention_overrides();

// Pure: the flash kernel for a device of compute capability major `sm_major`. The SM90 body on Hopper (9)
// unless overridden to mma, the mma.sync body elsewhere. GQA packing with the SM90 body when the index
// (maybe_geometry; null = dense) is shared per KV group of an even size `group_size` and packing is not off.
FlashKernelChoice choose_flash_kernel(int sm_major, const IndexGeometry* maybe_geometry, int group_size,
                                      const AttentionOverrides& overrides);

// choose_flash_kernel for CUDA device `device` with the process's overrides (tools, benchmarks, tests).
Result<FlashKernelChoice> flash_kernel_for_device(int device, const IndexGeometry* maybe_geometry,
                                                  int group_size);

// Which attention runs a prefill: the flash kernels dense or sparse, or a baseline.
enum class AttentionMethod { FLASH_DENSE, FLASH_SPARSE, CUDNN, EAGER };
const char* attention_method_name(AttentionMethod method);

// Pure: the method for a prompt of n tokens. SPARSE and AUTO need patterns (none: dense); AUTO goes sparse
// from options.sparse_min_length (its break-even) on.
AttentionMethod select_method(const BackendOptions& options, int64_t n);

// Pure: the index geometry of layer `layer`'s sparse prefill of n tokens (the kernel tile; one index head per
// query head, or per KV group when the layer's patterns are shared).
IndexGeometry layer_geometry(const ModelConfig& config, const BackendOptions& options, int layer, int64_t n);

// Device bytes of prefill attention, 256-aligned: the kernel's (`select`: the sparse work order or the eager
// baseline's) and, for sparse, the plan's index space (`plan`).
struct AttentionBytes {
  size_t select = 0, plan = 0;
};

// A prefill's attention on one device: the method, each layer's flash kernel (one entry per layer of
// options.patterns when sparse, else one for every layer) and the workspace.
struct AttentionDecision {
  AttentionMethod method = AttentionMethod::FLASH_DENSE;
  std::vector<FlashKernelChoice> kernels;
  AttentionBytes workspace;  // filled by attention_workspace()

  bool sparse() const { return method == AttentionMethod::FLASH_SPARSE; }
  FlashKernelChoice kernel(int layer) const { return kernels[sparse() ? layer : 0]; }
};

// Pure: method and kernels for n tokens on a device of compute capability major `sm_major`.
AttentionDecision decide_attention(const ModelConfig& config, const BackendOptions& options, int64_t n,
                                   int sm_major, const AttentionOverrides& overrides);

// The device workspace of `method` at n tokens (CUDA builds; UNSUPPORTED elsewhere).
Result<AttentionBytes> attention_workspace(const ModelConfig& config, const BackendOptions& options,
                                           int64_t n, AttentionMethod method);

}  // namespace sacc
