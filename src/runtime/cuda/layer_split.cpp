// The layer pipeline: layers in order, each GPU running its contiguous range, the residual stream [n, D]
// copied to the next GPU (peer to peer where the GPUs allow it) with an event the next GPU's stream waits on,
// so the host never blocks between GPUs. One shard is the single-GPU forward.
#include <cuda_runtime_api.h>

#include "core/cuda/cuda_check.h"
#include "runtime/cuda/shard_schedule.h"

namespace sacc::cuda_rt {
namespace {

class LayerPipeline final : public ShardSchedule {
 public:
  LayerPipeline(std::vector<DeviceShard*> shards, int64_t hidden)
      : shards_(std::move(shards)), hidden_(hidden) {}

  ~LayerPipeline() override {
    for (size_t i = 0; i < handoffs_.size(); ++i) {
      cudaSetDevice(shards_[i]->device());
      cudaEventDestroy(handoffs_[i]);
    }
  }

  // Peer access both ways between neighbours (a direct NVLink/PCIe copy instead of one staged through the
  // host), and one event per boundary, created on the sending GPU.
  Status init() {
    for (size_t i = 0; i + 1 < shards_.size(); ++i) {
      const int a = shards_[i]->device(), b = shards_[i + 1]->device();
      SACC_RETURN_IF_ERROR(enable_peer(a, b));
      SACC_RETURN_IF_ERROR(enable_peer(b, a));
      SACC_CUDA_TRY(cudaSetDevice(a));
      cudaEvent_t event = nullptr;
      SACC_CUDA_TRY(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
      handoffs_.push_back(event);
    }
    return Status::ok();
  }

  Status run(std::span<const int32_t> tokens, int64_t start, Progress* maybe_progress) override {
    const int64_t n = static_cast<int64_t>(tokens.size());
    SACC_RETURN_IF_ERROR(shards_.front()->embed(tokens));
    for (size_t i = 0; i < shards_.size(); ++i) {
      DeviceShard& shard = *shards_[i];
      if (i > 0) SACC_RETURN_IF_ERROR(hand_off(i - 1, n));
      for (int layer = shard.spec().layer_begin; layer < shard.spec().layer_end; ++layer) {
        SACC_RETURN_IF_ERROR(shard.layer(layer, n, start));
        if (maybe_progress) {
          SACC_RETURN_IF_ERROR(shard.synchronize());
          maybe_progress->advance();
        }
      }
    }
    return Status::ok();
  }

 private:
  static Status enable_peer(int device, int peer) {
    int can = 0;
    SACC_CUDA_TRY(cudaDeviceCanAccessPeer(&can, device, peer));
    if (!can) return Status::ok();
    SACC_CUDA_TRY(cudaSetDevice(device));
    const cudaError_t error = cudaDeviceEnablePeerAccess(peer, 0);
    if (error == cudaErrorPeerAccessAlreadyEnabled) {
      cudaGetLastError();
      return Status::ok();
    }
    return cuda_status(error, "cudaDeviceEnablePeerAccess");
  }

  // hidden[0, n) of shard `from` -> shard `from + 1`, ordered after `from`'s layers and before the next's.
  Status hand_off(size_t from, int64_t n) {
    DeviceShard& src = *shards_[from];
    DeviceShard& dst = *shards_[from + 1];
    SACC_CUDA_TRY(cudaSetDevice(src.device()));
    SACC_CUDA_TRY(cudaMemcpyPeerAsync(dst.hidden(), dst.device(), src.hidden(), src.device(),
                                      static_cast<size_t>(n) * hidden_ * 2, src.stream()));
    SACC_CUDA_TRY(cudaEventRecord(handoffs_[from], src.stream()));
    SACC_CUDA_TRY(cudaSetDevice(dst.device()));
    SACC_CUDA_TRY(cudaStreamWaitEvent(dst.stream(), handoffs_[from], 0));
    return Status::ok();
  }

  std::vector<DeviceShard*> shards_;
  int64_t hidden_;
  std::vector<cudaEvent_t> handoffs_;  // [shards - 1]
};

}  // namespace

Result<std::unique_ptr<ShardSchedule>> make_layer_pipeline(std::vector<DeviceShard*> shards, int64_t hidden) {
  auto pipeline = std::make_unique<LayerPipeline>(std::move(shards), hidden);
  SACC_RETURN_IF_ERROR(pipeline->init());
  return std::unique_ptr<ShardSchedule>(std::move(pipeline));
}

}  // namespace sacc::cuda_rt
