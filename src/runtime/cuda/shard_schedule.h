// How one forward step (a prefill or a decode token) runs over the shards of the CUDA backend: the layer
// pipeline (one GPU, or layer split: contiguous layer ranges with the hidden states handed from GPU to GPU)
// or tensor parallel (every GPU runs every layer on its heads and MLP columns; NCCL sums the partials).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/progress.h"
#include "runtime/cuda/device_shard.h"

namespace sacc::cuda_rt {

class ShardSchedule {
 public:
  virtual ~ShardSchedule() = default;
  // Embeds `tokens` at positions [start, start + n) and enqueues every layer; afterwards the shard with the
  // LM head holds the last layer's output in hidden(). With `maybe_progress`, waits for each layer and
  // advances it.
  virtual Status run(std::span<const int32_t> tokens, int64_t start, Progress* maybe_progress) = 0;
};

// The shards in layer order (the first embeds, the last has the LM head); `hidden` = the model's D.
Result<std::unique_ptr<ShardSchedule>> make_layer_pipeline(std::vector<DeviceShard*> shards, int64_t hidden);
// Shards holding every layer, each a slice of heads and MLP columns; the first has the LM head.
Result<std::unique_ptr<ShardSchedule>> make_tensor_parallel(std::vector<DeviceShard*> shards, int64_t hidden);

}  // namespace sacc::cuda_rt
