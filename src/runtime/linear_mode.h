// Precision of the linear layers (Q/K/V, O, gate/up, down) on the CUDA backend: bf16, or FP8 (e4m3) with
// per-output-channel weight scales fixed at load and per-token activation scales computed before each GEMM.
// Norms, embeddings, the LM head, attention and the KV cache stay bf16 either way.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/model_config.h"

namespace sacc {

enum class LinearMode { BF16, FP8 };

// "bf16" | "fp8" (--linear); anything else is INVALID_ARGUMENT naming the choices.
Result<LinearMode> parse_linear_mode(const std::string& text);
const char* linear_mode_name(LinearMode mode);

// Device bytes of the weights of one layer of `c` (a shard's view included): norms and biases in bf16, the
// linear layers in bf16 or as e4m3 (1 byte a parameter) plus one fp32 scale per output channel.
uint64_t layer_weight_bytes(const ModelConfig& c, LinearMode mode);

// Rows per chunk of the linear layers when none is asked for (chunk 0). A GPU needs large GEMMs to fill its
// SMs; the CPU's matmuls gain nothing past a few hundred rows, and its fp32 [chunk, F] activation buffers
// only raise the peak memory (SmolLM2, a 4096-token prompt: the engine's peak 283 -> 218 MiB from 8192 to 512
// rows, no slower).
inline constexpr int64_t kGpuLinearChunk = 8192;
inline constexpr int64_t kCpuLinearChunk = 512;
inline int64_t linear_chunk_rows(int64_t requested, bool cpu) {
  return requested > 0 ? requested : cpu ? kCpuLinearChunk : kGpuLinearChunk;
}

}  // namespace sacc
