#include "runtime/cuda/step_timer.h"

#include "core/log.h"

namespace sacc::cuda_rt {

StepTimer::~StepTimer() {
  for (auto& [start, stop] : events_) {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
}

void StepTimer::begin(cudaStream_t stream) {
  if (log_level() < LogLevel::DEBUG) return;
  if (used_ == events_.size()) {
    std::pair<cudaEvent_t, cudaEvent_t> pair{};
    if (cudaEventCreate(&pair.first) != cudaSuccess) return;
    if (cudaEventCreate(&pair.second) != cudaSuccess) {
      cudaEventDestroy(pair.first);
      return;
    }
    events_.push_back(pair);
  }
  if (cudaEventRecord(events_[used_].first, stream) == cudaSuccess) open_ = true;
}

void StepTimer::end(cudaStream_t stream) {
  if (!open_) return;
  open_ = false;
  if (cudaEventRecord(events_[used_].second, stream) == cudaSuccess) ++used_;
}

double StepTimer::take_milliseconds() {
  double total = 0.0;
  for (size_t i = 0; i < used_; ++i) {
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, events_[i].first, events_[i].second) == cudaSuccess) total += ms;
  }
  used_ = 0;
  return total;
}

}  // namespace sacc::cuda_rt
