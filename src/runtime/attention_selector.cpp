#include "runtime/attention_selector.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "attention/attention.h"
#include "core/device_info.h"
#include "core/log.h"

#ifdef SACC_WITH_CUDA
#include "attention/cuda/eager_attention.h"
#include "attention/plan.h"
#endif

namespace sacc {
namespace {

#ifdef SACC_WITH_CUDA
constexpr size_t kAlign = 256;

size_t align_up(size_t bytes) {
  return (bytes + kAlign - 1) / kAlign * kAlign;
}
#endif

bool unset(const char* value) {
  return value == nullptr || *value == '\0';
}

}  // namespace

Result<AttentionOverrides> parse_attention_overrides(const char* flash_body, const char* gqa_pack) {
  AttentionOverrides overrides;
  if (!unset(flash_body)) {
    if (std::strcmp(flash_body, "mma") == 0) {
      overrides.flash_body = FlashBody::MMA;
    } else if (std::strcmp(flash_body, "sm90") == 0) {
      overrides.flash_body = FlashBody::SM90;
    } else {
      return make_error(StatusCode::INVALID_ARGUMENT, "SACC_FLASH_BODY={}: expected mma or sm90", flash_body);
    }
  }
  if (!unset(gqa_pack)) {
    if (std::strcmp(gqa_pack, "0") != 0 && std::strcmp(gqa_pack, "1") != 0) {
      return make_error(StatusCode::INVALID_ARGUMENT, "SACC_FLASH_GQA_PACK={}: expected 0 or 1", gqa_pack);
    }
    overrides.gqa_pack = std::strcmp(gqa_pack, "1") == 0;
  }
  return overrides;
}

const AttentionOverrides& attention_overrides() {
  static const AttentionOverrides overrides = [] {
    Result<AttentionOverrides> parsed =
        parse_attention_overrides(std::getenv("SACC_FLASH_BODY"), std::getenv("SACC_FLASH_GQA_PACK"));
    if (parsed) return *parsed;
    SACC_LOG_WARN("{} (ignored)", parsed.status().message());
    return AttentionOverrides{};
  }();
  return overrides;
}

FlashKernelChoice choose_flash_kernel(int sm_major, const IndexGeometry* maybe_geometry, int group_size,
                                      const AttentionOverrides& overrides) {
  // wgmma and TMA need sm_90a (the build's default target); a forced sm90 elsewhere cannot run.
  FlashKernelChoice choice;
  choice.body = sm_major == 9 && overrides.flash_body.value_or(FlashBody::SM90) == FlashBody::SM90
                    ? FlashBody::SM90
                    : FlashBody::MMA;
  choice.gqa_pack = choice.body == FlashBody::SM90 && overrides.gqa_pack && maybe_geometry != nullptr &&
                    maybe_geometry->shared_per_kv_group && group_size % 2 == 0;
  return choice;
}

Result<FlashKernelChoice> flash_kernel_for_device(int device, const IndexGeometry* maybe_geometry,
                                                  int group_size) {
  SACC_ASSIGN_OR_RETURN(const GpuInfo gpu, query_gpu(device));
  return choose_flash_kernel(gpu.sm_major, maybe_geometry, group_size, attention_overrides());
}

const char* attention_method_name(AttentionMethod method) {
  switch (method) {
    case AttentionMethod::FLASH_DENSE:
      return "flash-dense";
    case AttentionMethod::FLASH_SPARSE:
      return "flash-sparse";
    case AttentionMethod::CUDNN:
      return "cudnn";
    case AttentionMethod::EAGER:
      return "eager";
  }
  return "unknown";
}

AttentionMethod select_method(const BackendOptions& options, int64_t n) {
  switch (options.attention) {
    case AttentionMode::CUDNN:
      return AttentionMethod::CUDNN;
    case AttentionMode::EAGER:
      return AttentionMethod::EAGER;
    case AttentionMode::SPARSE:
      return options.patterns.empty() ? AttentionMethod::FLASH_DENSE : AttentionMethod::FLASH_SPARSE;
    case AttentionMode::AUTO:
      return !options.patterns.empty() && n >= options.sparse_min_length ? AttentionMethod::FLASH_SPARSE
                                                                         : AttentionMethod::FLASH_DENSE;
    case AttentionMode::DENSE:
      break;
  }
  return AttentionMethod::FLASH_DENSE;
}

IndexGeometry layer_geometry(const ModelConfig& config, const BackendOptions& options, int layer, int64_t n) {
  const LayerPatterns& patterns = options.patterns[layer];
  IndexGeometry g;  // block_q / block_k: the kernel tile
  g.seq_len = n;
  g.shared_per_kv_group = patterns.shared_per_kv_group;
  g.num_heads = patterns.shared_per_kv_group ? config.num_kv_heads : config.num_heads;
  return g;
}

AttentionDecision decide_attention(const ModelConfig& config, const BackendOptions& options, int64_t n,
                                   int sm_major, const AttentionOverrides& overrides) {
  AttentionDecision decision;
  decision.method = select_method(options, n);
  const int group_size = config.num_heads / std::max(1, config.num_kv_heads);
  if (decision.sparse()) {
    for (int l = 0; l < static_cast<int>(options.patterns.size()); ++l) {
      const IndexGeometry g = layer_geometry(config, options, l, n);
      decision.kernels.push_back(choose_flash_kernel(sm_major, &g, group_size, overrides));
    }
  } else {
    decision.kernels.push_back(choose_flash_kernel(sm_major, nullptr, group_size, overrides));
  }
  return decision;
}

Result<AttentionBytes> attention_workspace(const ModelConfig& config, const BackendOptions& options,
                                           int64_t n, AttentionMethod method) {
#ifndef SACC_WITH_CUDA
  (void)config;
  (void)options;
  (void)n;
  (void)method;
  return make_error(StatusCode::UNSUPPORTED, "attention: this build has no CUDA kernels");
#else
  const AttentionShape shape{n, config.num_heads, config.num_kv_heads, config.head_dim};
  size_t select = 0, plan = 0;
  switch (method) {
    case AttentionMethod::EAGER:
      select = eager_attention_workspace_bytes(shape);
      break;
    case AttentionMethod::CUDNN:
      break;
    case AttentionMethod::FLASH_SPARSE:
      for (int l = 0; l < static_cast<int>(options.patterns.size()); ++l) {
        const IndexGeometry g = layer_geometry(config, options, l, n);
        SACC_ASSIGN_OR_RETURN(AttentionSelection sel, attention_select_cuda(shape, &g));
        SACC_ASSIGN_OR_RETURN(size_t bytes, plan_workspace_bytes(shape, options.patterns[l], g));
        select = std::max(select, sel.workspace_bytes);
        plan = std::max(plan, bytes);
      }
      break;
    case AttentionMethod::FLASH_DENSE: {
      SACC_ASSIGN_OR_RETURN(AttentionSelection sel, attention_select_cuda(shape, nullptr));
      select = sel.workspace_bytes;
      break;
    }
  }
  return AttentionBytes{align_up(select), align_up(plan)};
#endif
}

}  // namespace sacc
