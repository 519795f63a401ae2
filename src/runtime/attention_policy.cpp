#include "runtime/attention_policy.h"

#include <cstring>
#include <filesystem>

#include "attention/cost_model.h"
#include "attention/kernel_tile.h"
#include "core/log.h"
#include "runtime/auto_calibration.h"
#include "runtime/pattern_config.h"

namespace sacc {

Result<std::vector<LayerPatterns>> uniform_patterns(const ModelConfig& config, const std::string& pattern) {
  const bool grouped = pattern.rfind(kGroupPrefix, 0) == 0;
  Result<PatternSpec> spec = parse_pattern(grouped ? pattern.substr(std::strlen(kGroupPrefix)) : pattern);
  if (!spec) return spec.status().with_context("--pattern");
  LayerPatterns layer;
  // With one query head per KV head a group index is a per-head index.
  layer.shared_per_kv_group = grouped && config.num_kv_heads != config.num_heads;
  layer.heads.assign(layer.shared_per_kv_group ? config.num_kv_heads : config.num_heads, *spec);
  return std::vector<LayerPatterns>(config.num_layers, layer);
}

namespace {

bool sparse_pays(const ModelConfig& config, const std::vector<LayerPatterns>& patterns, int64_t length) {
  double dense = 0.0, sparse = 0.0;
  for (const LayerPatterns& layer : patterns) {
    IndexGeometry geometry;
    geometry.seq_len = length;
    geometry.shared_per_kv_group = layer.shared_per_kv_group;
    geometry.num_heads = static_cast<int>(layer.heads.size());
    const AttentionCost dense_cost = predict_cost(PatternSpec{}, geometry, config.head_dim, layer.estimation);
    for (const PatternSpec& spec : layer.heads) {
      dense += dense_cost.total_flops();
      sparse += predict_cost(spec, geometry, config.head_dim, layer.estimation).total_flops();
    }
  }
  return sparse <= kSparseCostRatio * dense;
}

}  // namespace

int64_t sparse_break_even_length(const ModelConfig& config, const std::vector<LayerPatterns>& patterns) {
  constexpr int64_t kStep = kTileBlockQ;  // one query block
  int64_t below = 0, length = kMinSparseLength;
  while (!sparse_pays(config, patterns, length)) {
    if (length >= config.max_context) return config.max_context + 1;
    below = length;
    length = std::min(2 * length, config.max_context);
  }
  if (below == 0) return length;
  // Invariant: sparse does not pay at `below`, pays at `length`.
  while (length - below > kStep) {
    const int64_t middle = (below + length) / 2;
    (sparse_pays(config, patterns, middle) ? length : below) = middle;
  }
  return length;
}

std::string sparse_setting_name(const std::string& pattern, const std::string& pattern_config) {
  if (!pattern_config.empty()) return "config:" + std::filesystem::path(pattern_config).filename().string();
  return pattern.empty() ? kDefaultSparsePattern : pattern;
}

Status configure_attention(const ModelConfig& config, AttentionMode mode, const std::string& pattern,
                           const std::string& pattern_config, BackendOptions& options) {
  options.attention = mode;
  options.patterns.clear();
  options.sparse_min_length = 0;
  options.auto_basis.clear();
  if (mode != AttentionMode::SPARSE && mode != AttentionMode::AUTO) return Status::ok();
  if (!pattern_config.empty()) {
    SACC_ASSIGN_OR_RETURN(options.patterns, load_pattern_config(pattern_config, config));
  } else {
    SACC_ASSIGN_OR_RETURN(options.patterns,
                          uniform_patterns(config, pattern.empty() ? kDefaultSparsePattern : pattern));
  }
  if (mode != AttentionMode::AUTO) return Status::ok();
  const CalibrationKey key =
      calibration_key(config, options.device, sparse_setting_name(pattern, pattern_config));
  Result<std::optional<Calibration>> measured = find_calibration(key);
  if (!measured) SACC_LOG_WARN("auto: {} (using the cost model)", measured.status().message());
  const std::optional<ShippedBreakEven> shipped = shipped_break_even(key);
  if (measured && *measured) {
    options.sparse_min_length = (*measured)->break_even;
    options.auto_basis = fmt::format("measured by `sacc calibrate` on {} ({})", key.device, key.setting);
  } else if (shipped) {
    options.sparse_min_length = shipped->break_even;
    options.auto_basis = fmt::format(
        "the project's measurement on {}{} for this model shape ({}; `sacc calibrate` measures your own)",
        shipped->device, shipped->this_device ? "" : fmt::format(", another {} GPU", key.arch), key.setting);
  } else {
    options.sparse_min_length = sparse_break_even_length(config, options.patterns);
    options.auto_basis = fmt::format("the cost model (no calibration for {} on {}: run `sacc calibrate`)",
                                     key.setting, key.device);
  }
  return Status::ok();
}

std::string describe_auto_choice(const BackendOptions& options, int64_t max_context) {
  const std::string choice = options.sparse_min_length > max_context
                                 ? fmt::format("dense prefill at every length up to {} tokens", max_context)
                                 : fmt::format("sparse prefill from {} tokens", options.sparse_min_length);
  return fmt::format("{} (break-even from {})", choice, options.auto_basis);
}

}  // namespace sacc
