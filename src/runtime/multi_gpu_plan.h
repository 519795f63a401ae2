// Where each part of a model goes when several GPUs share it (DESIGN.md §7), computed on the host from sizes
// alone so it can be tested without a GPU and a placement that cannot fit fails before any upload.
//
// A shard is one GPU's share: a contiguous layer range (layer split) and/or a slice of KV heads with their
// query heads and of MLP columns (tensor parallel). One GPU running the whole model is the one-shard case.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention_params.h"
#include "model/model_config.h"
#include "runtime/backend.h"

namespace sacc {

Result<SplitMode> parse_split_mode(const std::string& text);  // "layer" | "tensor"
const char* split_mode_name(SplitMode mode);
// "0,1,3" -> {0, 1, 3}; INVALID_ARGUMENT for an empty list, a non-number or a repeated ordinal.
Result<std::vector<int>> parse_gpu_list(const std::string& text);

struct ShardSpec {
  int device = 0;                       // CUDA ordinal
  int layer_begin = 0, layer_end = 0;   // layers [begin, end)
  int kv_head_begin = 0, kv_heads = 0;  // KV heads [begin, begin + kv_heads) with their query heads
  int64_t ffn_begin = 0, ffn = 0;       // MLP columns [begin, begin + ffn)
  bool embeds = false;                  // holds the embedding table and embeds the tokens
  bool has_lm_head = false;             // holds the final norm and LM head and computes the logits
  int num_layers() const { return layer_end - layer_begin; }
};

// The whole model on one GPU.
ShardSpec whole_model_shard(const ModelConfig& model, int device);

// The model as one shard sees it: its layers, query/KV heads and MLP width (hidden size, vocabulary and
// RoPE unchanged), so per-shard loops and buffer sizes read like the single-GPU ones.
ModelConfig shard_config(const ModelConfig& model, const ShardSpec& shard);

// One layer's patterns restricted to KV heads [kv_head_begin, +kv_heads): per-query-head patterns keep the
// query heads of those KV groups, shared_per_kv_group patterns keep those KV heads.
LayerPatterns slice_layer_patterns(const LayerPatterns& layer, const ModelConfig& model, int kv_head_begin,
                                   int kv_heads);
// The shard's layers (re-indexed from 0) and heads; empty stays empty (dense everywhere).
std::vector<LayerPatterns> shard_patterns(const std::vector<LayerPatterns>& patterns,
                                          const ModelConfig& model, const ShardSpec& shard);

// Device bytes of one shard for `tokens` positions.
struct ShardMemory {
  std::string device;          // "cuda:1"
  uint64_t fixed_weights = 0;  // embeddings (first GPU / every GPU in TP), final norm + LM head
  uint64_t layer_weights = 0;  // the shard's layers (its heads and MLP columns)
  uint64_t kv_cache = 0;       // bf16 K and V of the shard's layers and KV heads
  uint64_t workspace = 0;      // activations of the longest step + attention workspace + GEMM workspace
  uint64_t available = 0;      // what the GPU may use (0: unknown)
  uint64_t total() const { return fixed_weights + layer_weights + kv_cache + workspace; }
};

// Sizes the planners and the multi-GPU `sacc info` report share. `attention_workspace`: the attention
// library's bytes for the shard's heads at this length (cuda_attention_workspace_bytes); `separate_output`:
// the attention writes a buffer of its own (the cuDNN and eager baselines); `logit_rows`: the prefill's logit
// rows (BackendOptions::prefill_logit_rows), computed on the shard with the LM head.
struct ShardSizing {
  int64_t tokens = 0;  // prompt + generated positions
  int64_t chunk = kGpuLinearChunk;
  uint64_t attention_workspace = 0;
  bool separate_output = false;
  int64_t logit_rows = 1;
  LinearMode linear = LinearMode::BF16;
};
ShardMemory shard_memory(const ModelConfig& model, const ShardSpec& shard, const ShardSizing& sizing);

// Layer split over `gpus` (in order: the first embeds, the last holds the LM head) with `available[i]` bytes
// on gpus[i] (0: unlimited). Contiguous layer ranges covering every layer, as even as the caps allow.
// OUT_OF_MEMORY naming every GPU, what it holds and what it lacks when no placement fits.
Result<std::vector<ShardSpec>> plan_layer_split(const ModelConfig& model, const std::vector<int>& gpus,
                                                const std::vector<uint64_t>& available,
                                                const ShardSizing& sizing);

// Tensor parallel over `gpus`: KV heads (with their query heads) and MLP columns split evenly; embeddings on
// every GPU, the final norm and LM head on the first. INVALID_ARGUMENT when the KV heads or the MLP width do
// not divide by the GPU count.
Result<std::vector<ShardSpec>> plan_tensor_parallel(const ModelConfig& model, const std::vector<int>& gpus);

// OUT_OF_MEMORY naming each GPU whose shard exceeds `available[i]` (0: unlimited), with its parts.
Status check_shards_fit(const ModelConfig& model, const std::vector<ShardSpec>& shards,
                        const std::vector<uint64_t>& available, const ShardSizing& sizing);

// The placement the CUDA backend makes for options.gpus / split / max_tokens: the shards, what each GPU may
// use (free memory capped by its DeviceAllocator budget, see apply_gpu_caps) and the sizing they were planned
// with. One GPU (gpus empty or one entry): the whole model, unchecked (check_plan covers it).
struct GpuPlacement {
  std::vector<ShardSpec> shards;
  std::vector<uint64_t> available;  // [shards]
  ShardSizing sizing;
};
Result<GpuPlacement> plan_gpu_placement(const ModelConfig& model, const BackendOptions& options);

// --gpu-mem: a DeviceAllocator budget of options.per_gpu_cap on every GPU in options.gpus (no-op without a
// cap or without CUDA), so the run itself fails cleanly at the cap.
void apply_gpu_caps(const BackendOptions& options);

// A table per shard (layers, heads, weights, KV, workspace, total, available) for `sacc info`.
std::string describe_shards(const ModelConfig& model, const std::vector<ShardSpec>& shards,
                            const std::vector<uint64_t>& available, const ShardSizing& sizing);

}  // namespace sacc
