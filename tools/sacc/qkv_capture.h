// Real attention inputs from a model: run one prefill on the model's device (the CPU backend, or the CUDA
// backend on one GPU) and keep each chosen layer's post-RoPE Q [L, Hq, d] and K, V [L, Hkv, d] (fp32; K and V
// as the bf16 KV cache holds them, Q in the backend's precision), for `sacc eval recall` and `sacc search`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "reference/qkv.h"
#include "tools/sacc/eval_common.h"

namespace sacc::cli {

// Layers to keep: all when `layers` is empty.
Result<std::map<int, ref::HostQkv>> capture_qkv(const EvalModel& model, const std::vector<int32_t>& prompt,
                                                const std::vector<int>& layers);

// Prose tokens cut to `length` (BOS first when the model adds one).
Result<std::vector<int32_t>> prose_prompt(const EvalModel& model, const std::string& text_path,
                                          int64_t length);

// Writes layer_<i>.safetensors (q, k, v in bf16, the kernels' input precision) into `dir`.
Status dump_qkv(const std::map<int, ref::HostQkv>& captured, const std::string& dir);

}  // namespace sacc::cli
