// Precision of the linear layers (Q/K/V, O, gate/up, down) on the CUDA backend: bf16, or FP8 (e4m3) with
// per-output-channel weight scales fixed at load and per-token activation scales computed before each GEMM.
// Norms, embeddings, the LM head, attention and the KV cache stay bf16 either way.
#pragma once

#include <algorithm>
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
// SMs: it takes the most rows, a power of two from kGpuLinearChunk up, whose gate/up activations ([rows, 2F]
// bf16) stay within kGpuChunkActivationBytes, so a narrow model runs longer GEMMs (Qwen2.5-0.5B, F 4864:
// 16384 rows, its 16K and 32K prefills 2-3.6 % faster than with 8192 on an H100, 32768 no faster) and a wide
// one keeps 8192 (Llama-3.1-8B, F 14336: 16384 rows no faster, 512 MiB more;
// bench/results/real_models_h200.md, "eighteenth session"). The CPU's matmuls gain nothing past a few
// hundred rows, and its fp32 [chunk, F] activation buffers only raise the peak memory (SmolLM2, a 4096-token
// prompt: the engine's peak 283 -> 218 MiB from 8192 to 512 rows, no slower).
inline constexpr int64_t kGpuLinearChunk = 8192;  // the least a GPU takes
inline constexpr uint64_t kGpuChunkActivationBytes = uint64_t{512} << 20;
inline constexpr int64_t kCpuLinearChunk = 512;
inline int64_t linear_chunk_rows(int64_t requested, bool cpu, const ModelConfig& c) {
  if (requested > 0) return requested;
  if (cpu) return kCpuLinearChunk;
  const uint64_t row_bytes = 2 * 2 * static_cast<uint64_t>(std::max<int64_t>(c.ffn, 1));  // [1, 2F] bf16
  int64_t rows = kGpuLinearChunk;
  while (static_cast<uint64_t>(2 * rows) * row_bytes <= kGpuChunkActivationBytes) rows *= 2;
  return rows;
}

}  // namespace sacc
