// One weights structure for every source: an HF directory (views into memory-mapped safetensors), a GGUF file
// (dequantised host buffers) or a `random:` model (no data; values drawn from a counter-based generator by
// the backend that uploads them, on the host or on the device).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "model/dequantize.h"
#include "model/model_config.h"
#include "model/random_weights.h"

namespace sacc {

// A matrix kept in its GGUF block format inside the file's read-only mapping: row r of the [rows, cols]
// tensor is `row_bytes` bytes at data + r * row_bytes (cols / block_size blocks).
struct QuantRows {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t row_bytes = 0;
};

struct WeightTensor {
  std::string name;  // as the source spells it, for error messages
  // Host data, F32 / F16 / BF16; data == nullptr for random and block-quantised weights (shape still set).
  TensorView view;
  RandomFill random;
  QuantRows quant;  // quant.data != nullptr: the values live in file blocks, dequantised on demand
  bool defined() const { return view.shape.ndim > 0; }
  bool is_quantized() const { return quant.data != nullptr; }
  bool is_random() const { return view.data == nullptr && !is_quantized(); }
  uint64_t host_bytes() const;  // bytes the values occupy on the host (0 for random weights)
};

struct LayerWeights {
  WeightTensor attn_norm;     // [D]
  WeightTensor wq, wk, wv;    // [Hq*d, D], [Hkv*d, D], [Hkv*d, D]
  WeightTensor bq, bk, bv;    // [Hq*d], [Hkv*d], [Hkv*d] (Qwen2 only; undefined otherwise)
  WeightTensor wo;            // [D, Hq*d]
  WeightTensor mlp_norm;      // [D]
  WeightTensor w_gate, w_up;  // [F, D]
  WeightTensor w_down;        // [D, F]
};

struct LlamaWeights {
  ModelConfig config;
  WeightTensor embed;                // [V, D]
  std::vector<LayerWeights> layers;  // [N]
  WeightTensor final_norm;           // [D]
  WeightTensor lm_head;              // [V, D]; a copy of `embed`'s view when the embeddings are tied
  // Owners of the memory the views point into (mappings, dequantised buffers).
  std::vector<std::shared_ptr<const void>> storage;
  uint64_t total_bytes_on_host = 0;

  // Every tensor in a fixed order (embed, layers..., final_norm, lm_head unless tied).
  std::vector<const WeightTensor*> all() const;
  std::vector<WeightTensor*> all_mutable();  // the same, lm_head included even when tied
};

// Looks a tensor up by name in a source; NOT_FOUND when absent.
using TensorLookup = std::function<Result<TensorView>(const std::string& name)>;

enum class TensorNaming { HF, GGUF };

// Builds the structure from a source, checking that every tensor exists with a float dtype and the shape the
// config implies ("model.layers.3.self_attn.k_proj.weight: shape [512, 576], expected [192, 576]").
Result<LlamaWeights> llama_weights_from_lookup(const ModelConfig& config, const TensorLookup& lookup,
                                               TensorNaming naming);

// Random weights for a config: norms near 1, matrices with std ~ 1/sqrt(fan_in), reproducible from `seed`.
LlamaWeights llama_weights_random(const ModelConfig& config, uint64_t seed);

// Element `index` of a tensor as float (host data, file blocks or generator), and a whole tensor converted
// into `out`.
float weight_value(const WeightTensor& tensor, int64_t index);
// Row `row` of a 2-D tensor converted into `out`: out [cols].
void weight_row_to_f32(const WeightTensor& tensor, int64_t row, float* out);
void weight_to_f32(const WeightTensor& tensor, float* out);      // out: [numel]
void weight_to_bf16(const WeightTensor& tensor, uint16_t* out);  // out: [numel]

}  // namespace sacc
