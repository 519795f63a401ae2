// NCCL communicators for tensor parallel from one host thread: one communicator per GPU (ncclCommInitAll),
// and an in-place bf16 sum all-reduce over every GPU's buffer, each on its own stream, in one NCCL group.
//
// libnccl.so.2 is opened at run time (dlopen) rather than linked: linking would make every CUDA binary,
// single-GPU runs included, fail to start on a machine whose loader path lacks NCCL (the GPU image ships it
// only inside PyTorch's pip package). Builds without nccl.h answer UNSUPPORTED.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "core/status.h"

namespace sacc::cuda_rt {

class NcclGroup {
 public:
  // One communicator per ordinal in `devices` (ranks in that order).
  static Result<std::unique_ptr<NcclGroup>> create(const std::vector<int>& devices);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  // buffers[r] [count] bf16 on rank r <- the sum over ranks, in place; enqueued on streams[r], no host wait.
  Status all_reduce_bf16(const std::vector<void*>& buffers, size_t count,
                         const std::vector<cudaStream_t>& streams);

 private:
  struct Impl;
  explicit NcclGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sacc::cuda_rt
