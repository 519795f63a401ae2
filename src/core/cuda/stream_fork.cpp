#include "core/cuda/stream_fork.h"

#include <map>

#include "core/cuda/cuda_check.h"

namespace sacc {
namespace {

// The calling thread's side stream and events for one device; released when the thread ends (errors then
// ignored: the context may already be gone at process exit).
struct SideResources {
  cudaStream_t stream = nullptr;
  cudaEvent_t forked = nullptr;
  cudaEvent_t joined = nullptr;
  SideResources() = default;
  SideResources(const SideResources&) = delete;
  SideResources& operator=(const SideResources&) = delete;
  ~SideResources() {
    if (joined) cudaEventDestroy(joined);
    if (forked) cudaEventDestroy(forked);
    if (stream) cudaStreamDestroy(stream);
  }
};

Result<SideResources*> side_resources() {
  thread_local std::map<int, SideResources> per_device;
  int device = 0;
  SACC_CUDA_TRY(cudaGetDevice(&device));
  SideResources& r = per_device[device];
  if (r.stream == nullptr) {
    SACC_CUDA_TRY(cudaStreamCreateWithFlags(&r.stream, cudaStreamNonBlocking));
    SACC_CUDA_TRY(cudaEventCreateWithFlags(&r.forked, cudaEventDisableTiming));
    SACC_CUDA_TRY(cudaEventCreateWithFlags(&r.joined, cudaEventDisableTiming));
  }
  return &r;
}

}  // namespace

Result<StreamFork> fork_stream(cudaStream_t origin) {
  SACC_ASSIGN_OR_RETURN(SideResources * r, side_resources());
  SACC_CUDA_TRY(cudaEventRecord(r->forked, origin));
  SACC_CUDA_TRY(cudaStreamWaitEvent(r->stream, r->forked, 0));
  return StreamFork(origin, r->stream, r->joined);
}

Status StreamFork::join() const {
  SACC_CUDA_TRY(cudaEventRecord(joined_, side_));
  SACC_CUDA_TRY(cudaStreamWaitEvent(origin_, joined_, 0));
  return Status::ok();
}

}  // namespace sacc
