// Tensor parallel: every GPU embeds the tokens (the table is replicated) and runs every layer on its KV heads
// (with their query heads and sparse patterns) and MLP columns. o_proj and down_proj then give partial sums:
// rank 0 adds its partial to the residual stream, the other ranks write theirs over their copy of it, and an
// in-place bf16 all-reduce leaves x + the sum of the partials on every GPU.
//
// The all-reduces run chunk by chunk on a communication stream per GPU, so they overlap the GEMMs of the
// following chunks: chunk c's MLP waits only for chunk c's o_proj sum, and the next layer waits for the last
// MLP sum. Everything is enqueued from this one host thread; NCCL groups the ranks of each all-reduce.
#include <cuda_runtime_api.h>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/nccl_comm.h"
#include "runtime/cuda/shard_schedule.h"

namespace sacc::cuda_rt {
namespace {

class TensorParallel final : public ShardSchedule {
 public:
  TensorParallel(std::vector<DeviceShard*> shards, int64_t hidden, std::unique_ptr<NcclGroup> nccl)
      : shards_(std::move(shards)), hidden_(hidden), nccl_(std::move(nccl)), ranks_(shards_.size()) {}

  ~TensorParallel() override {
    for (size_t r = 0; r < ranks_.size(); ++r) {
      cudaSetDevice(shards_[r]->device());
      for (cudaEvent_t e : ranks_[r].reduced) cudaEventDestroy(e);
      if (ranks_[r].ready) cudaEventDestroy(ranks_[r].ready);
      if (ranks_[r].done) cudaEventDestroy(ranks_[r].done);
      if (ranks_[r].comm) cudaStreamDestroy(ranks_[r].comm);
    }
  }

  Status init() {
    for (size_t r = 0; r < ranks_.size(); ++r) {
      SACC_CUDA_TRY(cudaSetDevice(shards_[r]->device()));
      SACC_CUDA_TRY(cudaStreamCreateWithFlags(&ranks_[r].comm, cudaStreamNonBlocking));
      SACC_CUDA_TRY(cudaEventCreateWithFlags(&ranks_[r].ready, cudaEventDisableTiming));
      SACC_CUDA_TRY(cudaEventCreateWithFlags(&ranks_[r].done, cudaEventDisableTiming));
      comm_streams_.push_back(ranks_[r].comm);
    }
    return Status::ok();
  }

  Status run(std::span<const int32_t> tokens, int64_t start, Progress* maybe_progress) override {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t chunk = shards_.front()->chunk_rows(n);
    const size_t chunks = static_cast<size_t>((n + chunk - 1) / chunk);
    SACC_RETURN_IF_ERROR(reserve_events(chunks));
    for (DeviceShard* shard : shards_) SACC_RETURN_IF_ERROR(shard->embed(tokens));
    const size_t last = shards_.size();
    const int layers = shards_.front()->spec().layer_end;
    for (int layer = 0; layer < layers; ++layer) {
      for (DeviceShard* shard : shards_) SACC_RETURN_IF_ERROR(shard->attention(layer, n, start));
      for (size_t c = 0; c < chunks; ++c) {
        const int64_t c0 = static_cast<int64_t>(c) * chunk, rows = std::min(chunk, n - c0);
        for (size_t r = 0; r < last; ++r) {
          SACC_RETURN_IF_ERROR(shards_[r]->o_proj(layer, c0, rows, r == 0));
          SACC_RETURN_IF_ERROR(to_comm(r));
        }
        SACC_RETURN_IF_ERROR(sum_rows(c0, rows));
        for (size_t r = 0; r < last; ++r) SACC_RETURN_IF_ERROR(record_on_comm(r, ranks_[r].reduced[c]));
      }
      for (size_t c = 0; c < chunks; ++c) {
        const int64_t c0 = static_cast<int64_t>(c) * chunk, rows = std::min(chunk, n - c0);
        for (size_t r = 0; r < last; ++r) {
          SACC_RETURN_IF_ERROR(wait_on_compute(r, ranks_[r].reduced[c]));
          SACC_RETURN_IF_ERROR(shards_[r]->mlp(layer, c0, rows, r == 0));
          SACC_RETURN_IF_ERROR(to_comm(r));
        }
        SACC_RETURN_IF_ERROR(sum_rows(c0, rows));
      }
      // The next layer (or the LM head) reads every row: wait for the last sum.
      for (size_t r = 0; r < last; ++r) {
        SACC_RETURN_IF_ERROR(record_on_comm(r, ranks_[r].done));
        SACC_RETURN_IF_ERROR(wait_on_compute(r, ranks_[r].done));
      }
      if (maybe_progress) {
        SACC_RETURN_IF_ERROR(shards_.front()->synchronize());
        maybe_progress->advance();
      }
    }
    return Status::ok();
  }

 private:
  struct Rank {
    cudaStream_t comm = nullptr;
    cudaEvent_t ready = nullptr;       // compute -> comm: a chunk's partial is written
    cudaEvent_t done = nullptr;        // comm -> compute: the layer's last sum is in
    std::vector<cudaEvent_t> reduced;  // [chunks] comm -> compute: chunk c's o_proj sum is in
  };

  Status reserve_events(size_t chunks) {
    for (size_t r = 0; r < ranks_.size(); ++r) {
      SACC_CUDA_TRY(cudaSetDevice(shards_[r]->device()));
      while (ranks_[r].reduced.size() < chunks) {
        cudaEvent_t e = nullptr;
        SACC_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
        ranks_[r].reduced.push_back(e);
      }
    }
    return Status::ok();
  }

  // The comm stream of rank r continues after everything enqueued so far on its compute stream.
  Status to_comm(size_t r) {
    SACC_CUDA_TRY(cudaSetDevice(shards_[r]->device()));
    SACC_CUDA_TRY(cudaEventRecord(ranks_[r].ready, shards_[r]->stream()));
    return cuda_status(cudaStreamWaitEvent(ranks_[r].comm, ranks_[r].ready, 0), "cudaStreamWaitEvent");
  }

  Status record_on_comm(size_t r, cudaEvent_t event) {
    SACC_CUDA_TRY(cudaSetDevice(shards_[r]->device()));
    return cuda_status(cudaEventRecord(event, ranks_[r].comm), "cudaEventRecord");
  }

  Status wait_on_compute(size_t r, cudaEvent_t event) {
    SACC_CUDA_TRY(cudaSetDevice(shards_[r]->device()));
    return cuda_status(cudaStreamWaitEvent(shards_[r]->stream(), event, 0), "cudaStreamWaitEvent");
  }

  // x[c0, c0 + rows) summed over the ranks, in place, on the comm streams.
  Status sum_rows(int64_t c0, int64_t rows) {
    std::vector<void*> buffers;
    for (DeviceShard* shard : shards_) buffers.push_back(shard->hidden() + c0 * hidden_);
    return nccl_->all_reduce_bf16(buffers, static_cast<size_t>(rows) * hidden_, comm_streams_)
        .with_context("tensor-parallel all-reduce");
  }

  std::vector<DeviceShard*> shards_;
  int64_t hidden_;
  std::unique_ptr<NcclGroup> nccl_;
  std::vector<Rank> ranks_;                 // [ranks]
  std::vector<cudaStream_t> comm_streams_;  // [ranks]
};

}  // namespace

Result<std::unique_ptr<ShardSchedule>> make_tensor_parallel(std::vector<DeviceShard*> shards,
                                                            int64_t hidden) {
  std::vector<int> devices;
  for (DeviceShard* shard : shards) devices.push_back(shard->device());
  SACC_ASSIGN_OR_RETURN(std::unique_ptr<NcclGroup> nccl, NcclGroup::create(devices));
  auto schedule = std::make_unique<TensorParallel>(std::move(shards), hidden, std::move(nccl));
  SACC_RETURN_IF_ERROR(schedule->init());
  return std::unique_ptr<ShardSchedule>(std::move(schedule));
}

}  // namespace sacc::cuda_rt
