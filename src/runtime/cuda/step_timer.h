// Debug timing of one kind of device work within a forward step (the attention launches): CUDA event pairs
// recorded around it on the stream and summed after the step's synchronisation. Records nothing unless
// debug logging is on, so a normal run pays no events.
#pragma once

#include <cuda_runtime_api.h>

#include <utility>
#include <vector>

namespace sacc::cuda_rt {

class StepTimer {
 public:
  StepTimer() = default;
  StepTimer(const StepTimer&) = delete;
  StepTimer& operator=(const StepTimer&) = delete;
  ~StepTimer();

  void begin(cudaStream_t stream);
  void end(cudaStream_t stream);
  // Milliseconds between every begin() and its end() since the last call (the stream must have finished
  // them); then starts over.
  double take_milliseconds();

 private:
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> events_;  // reused across steps
  size_t used_ = 0;
  bool open_ = false;
};

}  // namespace sacc::cuda_rt
