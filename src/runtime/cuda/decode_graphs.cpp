#include "runtime/cuda/decode_graphs.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/cuda/cuda_check.h"
#include "core/log.h"

namespace sacc::cuda_rt {

Result<bool> parse_cuda_graphs_switch(const char* value) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "1") == 0) return true;
  if (std::strcmp(value, "0") == 0) return false;
  return make_error(StatusCode::INVALID_ARGUMENT, "SACC_CUDA_GRAPHS={}: expected 0 or 1", value);
}

bool cuda_graphs_enabled() {
  const Result<bool> on = parse_cuda_graphs_switch(std::getenv("SACC_CUDA_GRAPHS"));
  if (on) return *on;
  SACC_LOG_WARN("{} (decode graphs stay on)", on.status().message());
  return true;
}

DecodeGraphs::~DecodeGraphs() {
  destroy_graphs();
}

// An executable still in flight is freed when it completes (cudaGraphExecDestroy); none is, as every step
// is waited for before the next call.
void DecodeGraphs::destroy_graphs() {
  if (cudaSetDevice(device_) != cudaSuccess) return;
  for (auto& [rows, g] : graphs_) {
    if (g.exec) cudaGraphExecDestroy(g.exec);
    g.exec = nullptr;
    g.signature.clear();
  }
}

Result<float*> DecodeGraphs::host_logits(int64_t count) {
  const size_t bytes = static_cast<size_t>(count) * sizeof(float);
  if (host_logits_.size() < bytes) {
    host_logits_ = {};
    SACC_ASSIGN_OR_RETURN(host_logits_, PinnedBuffer::create(bytes, "decode step logits"));
  }
  return host_logits_.as<float>();
}

Status DecodeGraphs::run(int64_t rows, std::vector<uint64_t> signature, cudaStream_t stream,
                         const std::function<Status()>& enqueue) {
  signature.push_back(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(host_logits_.data())));
  Graph& g = graphs_[rows];
  if (!stats_.enabled || !g.warmed) {
    last_step_ = "layers enqueued";
    SACC_RETURN_IF_ERROR(enqueue());
    g.warmed = true;
    if (stats_.enabled) ++stats_.plain;
    return Status::ok();
  }
  if (g.exec && g.signature == signature) {
    last_step_ = "graph replayed";
    ++stats_.replays;
    return cuda_status(cudaGraphLaunch(g.exec, stream), "cudaGraphLaunch (decode step)");
  }
  const Status captured = capture_and_launch(g, std::move(signature), stream, enqueue);
  if (captured) {
    last_step_ = "graph captured";
    ++stats_.captures;
    return Status::ok();
  }
  SACC_LOG_WARN(
      "capturing a {}-row decode step into a CUDA graph failed ({}); decode steps run without "
      "graphs from now on",
      rows, captured.message());
  stats_.enabled = false;
  destroy_graphs();
  last_step_ = "layers enqueued";
  return enqueue();
}

Status DecodeGraphs::capture_and_launch(Graph& g, std::vector<uint64_t> signature, cudaStream_t stream,
                                        const std::function<Status()>& enqueue) {
  SACC_CUDA_TRY(cudaSetDevice(device_));
  SACC_CUDA_TRY(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  Status status = enqueue();
  cudaGraph_t graph = nullptr;
  // Ended whatever the body did, so the stream leaves capture mode; a body that failed half-way leaves an
  // invalidated capture and no graph.
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (status) status = cuda_status(ended, "cudaStreamEndCapture");
  if (status && g.exec) {
    // Same topology, new addresses: updated in place, cheaper than a new instantiation.
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(g.exec, graph, &info) != cudaSuccess) {
      cudaGetLastError();
      cudaGraphExecDestroy(g.exec);
      g.exec = nullptr;
    }
  }
  if (status && !g.exec) {
    status = cuda_status(cudaGraphInstantiate(&g.exec, graph, 0), "cudaGraphInstantiate");
    if (!status) g.exec = nullptr;
  }
  if (graph) cudaGraphDestroy(graph);
  if (status) status = cuda_status(cudaGraphLaunch(g.exec, stream), "cudaGraphLaunch (decode step)");
  if (!status) {
    cudaGetLastError();  // the capture's errors are not sticky; the plain step that follows must not see them
    return status;
  }
  g.signature = std::move(signature);
  return Status::ok();
}

}  // namespace sacc::cuda_rt
