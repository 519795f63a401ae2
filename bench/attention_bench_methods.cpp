#include "attention_bench_methods.h"

#include <fmt/format.h>

#include <algorithm>

#include "attention/attention.h"
#include "attention/cost_model.h"
#include "attention/cuda/cudnn_sdpa.h"
#include "attention/cuda/eager_attention.h"
#include "attention/plan.h"
#include "core/cuda/cuda_check.h"
#include "model/minference_config.h"
#include "runtime/attention_selector.h"

namespace sacc::bench {
namespace {

IndexGeometry geometry_for(const AttentionShape& shape) {
  IndexGeometry g;
  g.seq_len = shape.seq_len;
  g.num_heads = shape.num_q_heads;
  return g;
}

double predicted_kernel_flops(const std::vector<PatternSpec>& heads, const IndexGeometry& g, int head_dim) {
  const EstimationConfig config;
  double flops = 0.0;
  for (const PatternSpec& spec : heads) flops += predict_cost(spec, g, head_dim, config).kernel_flops;
  return flops;
}

// Smallest knob in [1, hi] whose uniform-pattern cost over all heads reaches `target` (costs grow with the
// knob).
template <typename MakeSpec>
int64_t equal_cost_knob(int64_t hi, double target, const IndexGeometry& g, int head_dim, MakeSpec make_spec) {
  int64_t lo = 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    const std::vector<PatternSpec> heads(static_cast<size_t>(g.num_heads), make_spec(mid));
    if (predicted_kernel_flops(heads, g, head_dim) >= target) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace

Result<std::vector<LayerBudgets>> load_minference_budgets(const std::string& path) {
  SACC_ASSIGN_OR_RETURN(const MinferenceConfig config, load_minference_config(path));
  std::vector<LayerBudgets> layers;
  for (size_t l = 0; l < config.size(); ++l) {
    LayerBudgets layer;
    layer.layer = static_cast<int>(l);
    layer.heads = layer_patterns(config, l);
    for (const PatternSpec& spec : layer.heads) {
      if (spec.kind != PatternKind::INTERVAL_SLASH) {
        return make_error(
            StatusCode::INVALID_ARGUMENT,
            "{}: layer {} has a {} head; the benchmark's Interval-Slash rows need vertical_and_slash "
            "budgets",
            path, l, pattern_kind_name(spec.kind));
      }
    }
    layers.push_back(std::move(layer));
  }
  if (layers.empty()) return make_error(StatusCode::CORRUPT_DATA, "{}: no layers", path);
  return layers;
}

const LayerBudgets& typical_layer(const std::vector<LayerBudgets>& layers) {
  std::vector<std::pair<int64_t, size_t>> totals;
  for (size_t l = 0; l < layers.size(); ++l) {
    int64_t total = 0;
    for (const PatternSpec& s : layers[l].heads) total += s.vertical + s.slash;
    totals.emplace_back(total, l);
  }
  std::sort(totals.begin(), totals.end());
  return layers[totals[totals.size() / 2].second];
}

Result<MethodSetup> setup_method(Method method, const AttentionShape& shape, const LayerBudgets& budgets,
                                 double density) {
  MethodSetup setup;
  setup.method = method;
  if (!is_sparse(method)) return setup;
  if (static_cast<int>(budgets.heads.size()) != shape.num_q_heads) {
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "layer {} has budgets for {} heads, the shape has {} query heads", budgets.layer,
                      budgets.heads.size(), shape.num_q_heads);
  }
  setup.geometry = geometry_for(shape);
  const IndexGeometry& g = setup.geometry;
  const double causal =
      predict_cost(PatternSpec{}, g, shape.head_dim, EstimationConfig{}).kernel_flops * shape.num_q_heads;
  const double layer_target = predicted_kernel_flops(budgets.heads, g, shape.head_dim);
  const double target = density > 0.0 ? density * causal : layer_target;
  const std::string sizing = density > 0.0
                                 ? fmt::format("predicted density {:.3f}", density)
                                 : fmt::format("equal predicted cost to layer {} (density {:.3f})",
                                               budgets.layer, causal > 0.0 ? layer_target / causal : 0.0);
  switch (method) {
    case Method::INTERVAL_SLASH:
    case Method::ADAPTIVE:
      setup.patterns.heads = budgets.heads;
      if (method == Method::ADAPTIVE) {
        for (PatternSpec& s : setup.patterns.heads) s.gamma = kAdaptiveGamma;
      }
      setup.pattern =
          fmt::format("MInference Llama-3.1-8B layer {} per-head budgets{}", budgets.layer,
                      method == Method::ADAPTIVE ? fmt::format(" as caps, gamma {}", kAdaptiveGamma) : "");
      break;
    case Method::TRIANGULAR: {
      auto make = [](int64_t window) {
        PatternSpec s;
        s.kind = PatternKind::TRIANGULAR;
        s.sink = kTriangularSinks;
        s.window = window;
        return s;
      };
      const int64_t window = equal_cost_knob(shape.seq_len, target, g, shape.head_dim, make);
      setup.patterns.heads.assign(shape.num_q_heads, make(window));
      setup.pattern = fmt::format("{} (all heads), {}", to_string(make(window)), sizing);
      break;
    }
    case Method::BLOCK_CLUSTER: {
      auto make = [](int64_t blocks) {
        PatternSpec s;
        s.kind = PatternKind::BLOCK_CLUSTER;
        s.blocks = blocks;
        return s;
      };
      const int64_t blocks = equal_cost_knob(g.num_k_blocks(), target, g, shape.head_dim, make);
      setup.patterns.heads.assign(shape.num_q_heads, make(blocks));
      setup.pattern = fmt::format("{} (all heads), {}", to_string(make(blocks)), sizing);
      break;
    }
    default:
      break;
  }
  return setup;
}

Result<MethodRunner> MethodRunner::create(const MethodSetup& setup, const AttentionShape& shape, int device) {
  MethodRunner runner;
  runner.setup_ = setup;
  const IndexGeometry* maybe_geometry = nullptr;
  switch (setup.method) {
    case Method::EAGER: {
      SACC_ASSIGN_OR_RETURN(runner.eager_workspace_, eager_attention_allocate_workspace(shape, device));
      return runner;
    }
    case Method::CUDNN:
      SACC_RETURN_IF_ERROR(cudnn_sdpa_available());
      return runner;
    case Method::DENSE:
      break;
    default: {
      maybe_geometry = &runner.setup_.geometry;
      SACC_ASSIGN_OR_RETURN(const size_t plan_bytes,
                            plan_workspace_bytes(shape, runner.setup_.patterns, runner.setup_.geometry));
      SACC_ASSIGN_OR_RETURN(runner.plan_workspace_,
                            DeviceBuffer::create(device, plan_bytes, "plan workspace"));
      break;
    }
  }
  SACC_ASSIGN_OR_RETURN(const AttentionSelection selection, attention_select_cuda(shape, maybe_geometry));
  SACC_ASSIGN_OR_RETURN(runner.kernel_, flash_kernel_for_device(device, maybe_geometry, shape.group_size()));
  SACC_ASSIGN_OR_RETURN(runner.run_workspace_,
                        DeviceBuffer::create(device, selection.workspace_bytes, "attention workspace"));
  return runner;
}

Status MethodRunner::enqueue(const AttentionParams& params, cudaEvent_t after_plan, cudaStream_t stream) {
  switch (setup_.method) {
    case Method::EAGER:
      SACC_CUDA_TRY(cudaEventRecord(after_plan, stream));
      return eager_attention_run(params, eager_workspace_.data(), eager_workspace_.size(), stream);
    case Method::CUDNN:
      SACC_CUDA_TRY(cudaEventRecord(after_plan, stream));
      return cudnn_sdpa_run(params, stream);
    case Method::DENSE:
      SACC_CUDA_TRY(cudaEventRecord(after_plan, stream));
      return attention_run_cuda(params, nullptr, kernel_, run_workspace_.data(), run_workspace_.size(),
                                stream);
    default: {
      SACC_ASSIGN_OR_RETURN(index_, plan(params, setup_.patterns, setup_.geometry, plan_workspace_.data(),
                                         plan_workspace_.size(), stream));
      SACC_CUDA_TRY(cudaEventRecord(after_plan, stream));
      return attention_run_cuda(params, &index_, kernel_, run_workspace_.data(), run_workspace_.size(),
                                stream);
    }
  }
}

Result<SparseIndex> MethodRunner::last_index(cudaStream_t stream) const {
  if (!is_sparse(setup_.method) || !index_.block_offsets) {
    return make_error(StatusCode::INTERNAL, "no sparse index was built for {}", method_name(setup_.method));
  }
  SACC_CUDA_TRY(cudaStreamSynchronize(stream));
  SparseIndex index;
  index.geometry = index_.geometry;
  const size_t slots = static_cast<size_t>(index.geometry.num_slots());
  index.block_offsets.resize(slots + 1);
  index.column_offsets.resize(slots + 1);
  SACC_CUDA_TRY(cudaMemcpy(index.block_offsets.data(), index_.block_offsets, (slots + 1) * sizeof(int32_t),
                           cudaMemcpyDeviceToHost));
  SACC_CUDA_TRY(cudaMemcpy(index.column_offsets.data(), index_.column_offsets, (slots + 1) * sizeof(int32_t),
                           cudaMemcpyDeviceToHost));
  index.block_ids.resize(static_cast<size_t>(index.block_offsets.back()));
  index.column_ids.resize(static_cast<size_t>(index.column_offsets.back()));
  if (!index.block_ids.empty()) {
    SACC_CUDA_TRY(cudaMemcpy(index.block_ids.data(), index_.block_ids,
                             index.block_ids.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  }
  if (!index.column_ids.empty()) {
    SACC_CUDA_TRY(cudaMemcpy(index.column_ids.data(), index_.column_ids,
                             index.column_ids.size() * sizeof(int32_t), cudaMemcpyDeviceToHost));
  }
  SACC_RETURN_IF_ERROR(
      index.validate().with_context(fmt::format("{} index from the GPU", method_name(setup_.method))));
  return index;
}

}  // namespace sacc::bench
