#include "tools/sacc/serve_prefix_cache.h"

#include <algorithm>

#include "core/log.h"
#include "runtime/memory_plan.h"

namespace sacc::cli {
namespace {

// Everything but the attention settings (each request's own: serve_attention.h) that changes what a prefill
// writes into the KV cache. The chunk is included although the CPU backend's rows do not depend on it: a key
// that is too strict costs a miss, one too loose a wrong answer.
std::string settings_key(const EngineArgs& a, const EngineSetup& setup, const std::string& model_id) {
  return fmt::format("model={}|source={}|seed={}|device={}|linear={}|chunk={}", model_id, a.model, a.seed,
                     setup.device.to_string(), a.linear, a.chunk);
}

}  // namespace

Result<uint64_t> prefix_cache_capacity(const std::string& flag, const Device& device) {
  if (flag.empty()) return device.is_cpu() ? kDefaultPrefixCacheCpu : kDefaultPrefixCacheCuda;
  Result<uint64_t> bytes = parse_bytes(flag);
  if (!bytes) return bytes.status().with_context("--prefix-cache");
  return *bytes;
}

Result<ServePrefixCacheSetup> make_serve_prefix_cache(const EngineArgs& args, const EngineSetup& setup,
                                                      const std::string& capacity_flag, bool keep_sparse,
                                                      const std::string& model_id) {
  SACC_ASSIGN_OR_RETURN(const uint64_t capacity, prefix_cache_capacity(capacity_flag, setup.device));
  ServePrefixCacheSetup out;
  out.cache = std::make_unique<PrefixCache>(PrefixCacheOptions{capacity, kPrefixCacheBlock});
  if (capacity == 0) return out;
  out.worker.maybe_cache = out.cache.get();
  out.worker.settings = settings_key(args, setup, model_id);
  out.worker.keep_sparse = keep_sparse;
  out.worker.kv_bytes_per_token = kv_cache_bytes(setup.model.weights.config, 1);
  SACC_LOG_INFO("serve: prefix cache up to {} ({}-token blocks{})", format_bytes(capacity), kPrefixCacheBlock,
                keep_sparse ? ", sparse prefills kept too" : "");
  return out;
}

}  // namespace sacc::cli
