// CUDA graphs of the single-GPU decode step. A decode step of a small model is a few hundred short launches
// (Qwen2.5-0.5B: ~15 per layer x 24 layers); enqueued one by one they cost the host 2-3 ms, several times
// the GPU's work. Captured once into a graph and replayed, the step costs one launch.
//
// What is captured: the whole batch step of B rows on one GPU (CudaBackend::decode is the step with B = 1),
// from the embedding to the LM head and the copy of the logits into pinned host memory. One graph per B,
// captured lazily.
//
// How per-step values reach the kernels: never as launch arguments. The rows' KV-cache pointers, positions
// and token ids are one table in device memory (DeviceShard::begin_batch), written by one copy from pinned
// memory before the graph is launched; the embedding, RoPE, KV store and decode attention read them there.
// The decode attention's grid covers the longest reserved cache of any slot and its CTAs past a row's keys
// exit at once (their partials are marked empty and skipped by the combine), so the grid holds while the
// caches fill. The graph and the plain path run the same launches with the same arguments: their results
// are the same bits.
//
// Invalidation, in one place (run()): a graph is replayed only while the step's signature — every address
// and size its launches bake in (DeviceShard::batch_step_signature, plus the pinned logits) — equals the
// one it was captured with; otherwise it is captured again (the executable updated in place where the
// topology allows). Freed and reallocated buffers (the slot count changes; the decode scratch grows) change
// the signature, also when the new buffer has the old address: the signature counts reallocations, since
// replaying a graph over freed memory fails even when the addresses match (a server interleaving prefill
// chunks with decode steps hit it). The KV caches are never baked in, and batch steps work in a workspace of
// their own, so a server's prefill (or prefill chunk) between decode steps, which reallocates the prefill's
// workspace, leaves the captured steps valid; a longer slot reserved widens the decode grid (one capture
// per B after it).
// Settings enter no decode step: set_attention changes prefills only (a decode step always runs the
// split-key decode kernel) and the linear mode is fixed when the backend is made (the weights' format).
//
// Capture rules kept: the stream is captured in thread-local mode (other threads' CUDA calls are not
// affected; this thread's unsafe calls fail the capture instead of running); nothing allocates, searches
// for a GEMM algorithm (cublaslt_gemm.h refuses), synchronises or copies pageable memory inside the step,
// and B is run once un-captured before its first capture (that fills cuBLASLt's algorithm cache). A failed
// capture warns once and turns graphs off for the backend; the step then runs plain.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "core/cuda/pinned_memory.h"
#include "core/status.h"

namespace sacc {

class Backend;

namespace cuda_rt {

// SACC_CUDA_GRAPHS: "0" runs decode steps launch by launch (debugging), "1" or unset replays graphs.
Result<bool> parse_cuda_graphs_switch(const char* value);
// The switch as the environment sets it now (read when a CUDA backend is made; a bad value warns and keeps
// graphs on).
bool cuda_graphs_enabled();

struct DecodeGraphStats {
  bool enabled = false;  // graphs in use: one GPU, SACC_CUDA_GRAPHS not 0, no capture failed
  int64_t plain = 0;     // steps enqueued launch by launch while enabled (a batch size's first step)
  int64_t captures = 0;  // steps captured into a graph, then launched
  int64_t replays = 0;   // steps that launched a graph captured before
};

class DecodeGraphs {
 public:
  explicit DecodeGraphs(int device) : device_(device) { stats_.enabled = true; }
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Pinned room for a step's logits, at least `count` floats; grows and never shrinks (its address is in
  // every graph's signature).
  Result<float*> host_logits(int64_t count);
  // One step of `rows` rows: `enqueue` puts the step's device work on `stream` (and nowhere else).
  // `signature`: what the work bakes in besides host_logits(). Replays, captures or runs `enqueue` plain as
  // the header says; never waits for the step.
  Status run(int64_t rows, std::vector<uint64_t> signature, cudaStream_t stream,
             const std::function<Status()>& enqueue);
  const DecodeGraphStats& stats() const { return stats_; }
  // How the last run() went: "layers enqueued", "graph captured" or "graph replayed" (the debug log).
  const char* last_step() const { return last_step_; }

 private:
  struct Graph {
    std::vector<uint64_t> signature;  // what `exec` was captured with
    cudaGraphExec_t exec = nullptr;
    bool warmed = false;  // the step has run un-captured once (GEMM algorithms cached)
  };
  // Captures `enqueue` into g.exec (updated in place where the topology is unchanged, else instantiated
  // anew) and launches it; nothing of the step has run when this fails.
  Status capture_and_launch(Graph& g, std::vector<uint64_t> signature, cudaStream_t stream,
                            const std::function<Status()>& enqueue);
  void destroy_graphs();

  int device_;
  std::map<int64_t, Graph> graphs_;  // by rows
  PinnedBuffer host_logits_;         // [rows, V] fp32, the graphs' last node writes it
  DecodeGraphStats stats_;
  const char* last_step_ = "layers enqueued";
};

// The decode-graph counters of a CUDA backend (tests; all zero when graphs are off); INVALID_ARGUMENT for
// another backend.
Result<DecodeGraphStats> decode_graph_stats(const Backend& backend);

}  // namespace cuda_rt
}  // namespace sacc
