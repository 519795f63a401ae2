// Tensor parallel: every GPU embeds the tokens (the table is replicated) and runs every layer on its KV heads
// (with their query heads and sparse patterns) and MLP columns. o_proj and down_proj then give partial sums:
// rank 0 adds its partial to the residual stream, the other ranks write theirs over their copy of it, and an
// in-place bf16 all-reduce leaves x + sum of partials on every GPU. Two all-reduces per layer, enqueued from
// this one host thread on each GPU's stream.
#include "runtime/cuda/nccl_comm.h"
#include "runtime/cuda/shard_schedule.h"

namespace sacc::cuda_rt {
namespace {

class TensorParallel final : public ShardSchedule {
 public:
  TensorParallel(std::vector<DeviceShard*> shards, int64_t hidden, std::unique_ptr<NcclGroup> nccl)
      : shards_(std::move(shards)), hidden_(hidden), nccl_(std::move(nccl)) {
    for (DeviceShard* shard : shards_) streams_.push_back(shard->stream());
  }

  Status run(std::span<const int32_t> tokens, int64_t start, Progress* maybe_progress) override {
    const int64_t n = static_cast<int64_t>(tokens.size());
    for (DeviceShard* shard : shards_) SACC_RETURN_IF_ERROR(shard->embed(tokens));
    const int layers = shards_.front()->spec().layer_end;
    for (int layer = 0; layer < layers; ++layer) {
      for (size_t r = 0; r < shards_.size(); ++r)
        SACC_RETURN_IF_ERROR(shards_[r]->attention_block(layer, n, start, r == 0));
      SACC_RETURN_IF_ERROR(sum_partials(n));
      for (size_t r = 0; r < shards_.size(); ++r)
        SACC_RETURN_IF_ERROR(shards_[r]->mlp_block(layer, n, r == 0));
      SACC_RETURN_IF_ERROR(sum_partials(n));
      if (maybe_progress) {
        SACC_RETURN_IF_ERROR(shards_.front()->synchronize());
        maybe_progress->advance();
      }
    }
    return Status::ok();
  }

 private:
  Status sum_partials(int64_t n) {
    std::vector<void*> buffers;
    for (DeviceShard* shard : shards_) buffers.push_back(shard->hidden());
    return nccl_->all_reduce_bf16(buffers, static_cast<size_t>(n) * hidden_, streams_)
        .with_context("tensor-parallel all-reduce");
  }

  std::vector<DeviceShard*> shards_;
  int64_t hidden_;
  std::unique_ptr<NcclGroup> nccl_;
  std::vector<cudaStream_t> streams_;  // [ranks]
};

}  // namespace

Result<std::unique_ptr<ShardSchedule>> make_tensor_parallel(std::vector<DeviceShard*> shards,
                                                            int64_t hidden) {
  std::vector<int> devices;
  for (DeviceShard* shard : shards) devices.push_back(shard->device());
  SACC_ASSIGN_OR_RETURN(std::unique_ptr<NcclGroup> nccl, NcclGroup::create(devices));
  return std::unique_ptr<ShardSchedule>(
      std::make_unique<TensorParallel>(std::move(shards), hidden, std::move(nccl)));
}

}  // namespace sacc::cuda_rt
