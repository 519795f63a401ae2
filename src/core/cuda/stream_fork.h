// Two independent chains of work on one stream's behalf: fork_stream() hands out a second stream of the
// current device that starts after everything enqueued on `origin` so far; join() makes `origin` wait for
// what was enqueued on it since. Both are event edges, so they are also captured into a CUDA graph when
// `origin` is being captured. The side stream and its two events belong to the calling thread (one set per
// device), so threads planning on their own streams never wait on each other's events.
#pragma once

#include <cuda_runtime_api.h>

#include "core/status.h"

namespace sacc {

class StreamFork {
 public:
  cudaStream_t side() const { return side_; }
  // origin waits for the side stream's work enqueued so far.
  Status join() const;

 private:
  friend Result<StreamFork> fork_stream(cudaStream_t origin);
  StreamFork(cudaStream_t origin, cudaStream_t side, cudaEvent_t joined)
      : origin_(origin), side_(side), joined_(joined) {}
  cudaStream_t origin_;
  cudaStream_t side_;
  cudaEvent_t joined_;
};

Result<StreamFork> fork_stream(cudaStream_t origin);

}  // namespace sacc
