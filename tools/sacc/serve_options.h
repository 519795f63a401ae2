// `sacc serve`'s flags: the model, device and attention flags of `sacc generate` (engine_setup.h) plus the
// HTTP ones.
#pragma once

#include <cstdint>
#include <string>

#include "tools/sacc/engine_setup.h"

namespace sacc::cli {

struct ServeArgs {
  EngineArgs engine;
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;
  std::string api_key;       // empty: no authentication
  int64_t max_queue = 16;    // requests waiting for the worker; more get 429
  std::string model_name;    // the id clients send as "model"; empty: the model file's name without .gguf
  std::string prefix_cache;  // --prefix-cache bytes ("8GiB"; "0" off; empty: the device's default)
  bool prefix_cache_sparse = false;  // also keep the KV of sparse prefills (an approximation: prefix_cache.h)
  int64_t max_batch = 0;             // sequences decoded together (0: the device's default, below)
  int64_t prefill_chunk = 2048;      // prompt tokens per prefill step while others decode
};

// --max-batch without the flag: 8 sequences on a GPU (a decode step is bound by reading the weights, so
// more rows come almost free), 4 on the CPU (its GEMMs grow with the rows).
constexpr int64_t kDefaultMaxBatchCuda = 8;
constexpr int64_t kDefaultMaxBatchCpu = 4;
// --prefill-chunk must be a positive multiple of this, and every chunk but a prompt's last ends on one (a
// later chunk then starts on a whole query tile; the CUDA backend's extend runs its flash kernel, see
// DeviceShard::run_attention).
constexpr int64_t kPrefillChunkAlign = 256;
// A prefill step between decode steps is kept to about this many decode steps' time, so a running stream
// waits about (1 + this) times its idle inter-token latency for a token while a long prompt is prefilled.
// Below 2: the pace is that of the last chunk, and a chunk deeper into a long prompt costs more per token
// (its attention reads more keys), so the wait overshoots the estimate by up to ~1 decode step at 32K.
constexpr double kChunkDecodeSteps = 1.5;

// The id /v1/models lists: --model-name, or the last path component of -m without ".gguf".
std::string served_model_id(const ServeArgs& args);

}  // namespace sacc::cli
