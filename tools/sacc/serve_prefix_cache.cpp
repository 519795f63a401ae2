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
  // The room beside the weights, measured once now that they are loaded (the requests' own buffers come and
  // go). On a GPU that is the DeviceAllocator's budget less what it holds; on the CPU the budget caps the
  // whole process, weights included. Several GPUs place layers per GPU: there the capacity alone limits.
  uint64_t room = setup.options.gpus.size() > 1 ? 0 : available_memory(setup.device);
  const std::string budget = args.budget;
  if (room && setup.device.is_cpu() && !budget.empty()) {
    Result<uint64_t> cap = parse_bytes(budget);
    // The budget caps the whole device, weights included.
    if (cap)
      room = std::min(room, *cap > setup.model.weights.total_bytes_on_host
                                ? *cap - setup.model.weights.total_bytes_on_host
                                : uint64_t{0});
  }
  if (room) {
    EngineArgs plan_args = args;
    const EngineSetup* plan_setup = &setup;
    out.worker.maybe_room_beside = [room, plan_args, plan_setup](int64_t prompt, int64_t max_new,
                                                                 const BackendOptions& options) {
      const uint64_t need = run_bytes_beside_weights(plan_args, *plan_setup, prompt, max_new, &options);
      return room > need ? room - need : uint64_t{0};
    };
  }
  SACC_LOG_INFO("serve: prefix cache up to {} ({}-token blocks{})", format_bytes(capacity), kPrefixCacheBlock,
                keep_sparse ? ", sparse prefills kept too" : "");
  return out;
}

}  // namespace sacc::cli
