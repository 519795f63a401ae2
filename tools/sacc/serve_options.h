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
};

// The id /v1/models lists: --model-name, or the last path component of -m without ".gguf".
std::string served_model_id(const ServeArgs& args);

}  // namespace sacc::cli
