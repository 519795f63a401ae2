// A `sacc serve` request's attention settings: the server's --attention / --pattern / --pattern-config with
// the request's "sparse_accelerate" field (openai_protocol.h: AttentionOverride) over them. The values are
// checked by the CLI's own code (parse_attention_mode, configure_attention: the pattern grammar), and the
// settings name the prefix-cache entries they may restore (a snapshot is never restored under others).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "runtime/backend.h"
#include "tools/sacc/engine_setup.h"
#include "tools/sacc/openai_protocol.h"

namespace sacc::cli {

struct ServeAttention {
  BackendOptions options;  // setup.options with these attention settings (copy_attention_settings)
  std::string key;         // "attention=..|pattern=..|pattern_config=..|sparse_min=..", part of the cache key
};

// The server's own settings, from its flags (setup.options as load_engine configured them).
std::shared_ptr<const ServeAttention> server_attention(const EngineArgs& args, const EngineSetup& setup);

// A request's settings: `server` itself where the override changes nothing. The override's attention is
// auto, dense or sparse (the cuDNN and eager baselines are for benchmarks, and change the memory plan); its
// pattern replaces the server's --pattern or --pattern-config. A bad value: INVALID_ARGUMENT, and
// `bad_param` names the field ("sparse_accelerate.pattern").
Result<std::shared_ptr<const ServeAttention>> request_attention(
    const EngineArgs& args, const EngineSetup& setup, const std::shared_ptr<const ServeAttention>& server,
    const AttentionOverride& request, std::string& bad_param);

}  // namespace sacc::cli
