// `sacc serve --prefix-cache SIZE`: the capacity flag and the settings every cache entry is keyed by
// (runtime/prefix_cache.h holds the cache itself; serve_memory.h the room it may take beside the requests).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "runtime/prefix_cache.h"
#include "tools/sacc/engine_setup.h"
#include "tools/sacc/serve_scheduler.h"

namespace sacc::cli {

// Without the flag: 4 GiB of GPU memory, 1 GiB of host memory on the CPU backend.
constexpr uint64_t kDefaultPrefixCacheCuda = 4ull << 30;
constexpr uint64_t kDefaultPrefixCacheCpu = 1ull << 30;

// The capacity from --prefix-cache ("8GiB", "512MiB", "0" = off; "" = the device's default).
Result<uint64_t> prefix_cache_capacity(const std::string& flag, const Device& device);

// The cache, and how the worker uses it: entries keyed by the model and engine flags and each request's
// attention settings (a snapshot is never restored under other settings).
struct ServePrefixCacheSetup {
  std::unique_ptr<PrefixCache> cache;
  ServePrefixCache worker;
};
Result<ServePrefixCacheSetup> make_serve_prefix_cache(const EngineArgs& args, const EngineSetup& setup,
                                                      const std::string& capacity_flag, bool keep_sparse,
                                                      const std::string& model_id);

}  // namespace sacc::cli
