// `sacc eval recall`: on a real model's Q/K/V (captured from one prefill of real prose on the CPU or a GPU),
// per layer and head, the attention recall and the relative O error of each pattern setting, computed by the
// CPU oracle, and the pattern kind each head took (the runtime choice of
// "interval-slash:...|block-cluster:..."). The setting "oracle@G" is the best block index at recall G
// (reference/oracle_index.h): the floor any estimator's density can reach.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "model/head_config.h"
#include "reference/build_index.h"
#include "reference/dense_attention.h"
#include "reference/metrics.h"
#include "reference/oracle_index.h"
#include "reference/sparse_attention.h"
#include "search/pattern_search.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/eval_quality.h"
#include "tools/sacc/qkv_capture.h"

namespace sacc::cli {
namespace {

// One spec per query head for `setting` at `layer`: a pattern for every head, or "config:FILE".
Result<std::vector<PatternSpec>> setting_specs(const std::string& setting, int layer, int num_heads) {
  if (setting.rfind("config:", 0) == 0) {
    SACC_ASSIGN_OR_RETURN(HeadConfig config, load_head_config(setting.substr(7)));
    if (layer >= static_cast<int>(config.layers.size()) ||
        static_cast<int>(config.layers[layer].size()) != num_heads) {
      return make_error(StatusCode::INVALID_ARGUMENT, "{}: no entry for layer {} with {} heads", setting,
                        layer, num_heads);
    }
    return config.layer_patterns(layer).heads;
  }
  SACC_ASSIGN_OR_RETURN(PatternSpec spec, parse_pattern(setting));
  return std::vector<PatternSpec>(num_heads, spec);
}

constexpr std::string_view kOraclePrefix = "oracle@";

// G of an "oracle@G" setting (none for other settings); G must be a number in (0, 1].
Result<std::optional<double>> oracle_gamma(const std::string& setting) {
  if (setting.rfind(kOraclePrefix, 0) != 0) return std::optional<double>();
  const std::string_view text = std::string_view(setting).substr(kOraclePrefix.size());
  double gamma = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), gamma);
  if (error != std::errc() || end != text.data() + text.size() || !(gamma > 0.0 && gamma <= 1.0))
    return make_error(StatusCode::INVALID_ARGUMENT,
                      "{}: the oracle's recall must be a number in (0, 1], e.g. oracle@0.99", setting);
  return std::optional<double>(gamma);
}

// The index of `setting` at `layer` and the pattern kind each head took (none for the oracle).
Result<SparseIndex> setting_index(const std::string& setting, int layer, const ref::QkvView& view,
                                  const IndexGeometry& geometry, std::vector<PatternKind>* kinds,
                                  std::vector<PatternSpec>* specs) {
  SACC_ASSIGN_OR_RETURN(std::optional<double> gamma, oracle_gamma(setting));
  if (gamma) return ref::oracle_block_index(view, *gamma, geometry);
  SACC_ASSIGN_OR_RETURN(*specs, setting_specs(setting, layer, view.shape.num_q_heads));
  for (PatternSpec& spec : *specs) spec = ref::clamp_pattern_to_length(spec, geometry);
  return ref::build_index(view, *specs, EstimationConfig{}, geometry, kinds);
}

// Every setting checked before the model loads, so a typo costs no prefill ("config:" files are read per
// layer).
Status check_settings(const std::vector<std::string>& settings) {
  for (const std::string& setting : settings) {
    SACC_ASSIGN_OR_RETURN(std::optional<double> gamma, oracle_gamma(setting));
    if (!gamma && setting.rfind("config:", 0) != 0) SACC_RETURN_IF_ERROR(parse_pattern(setting).status());
  }
  return Status::ok();
}

}  // namespace

int run_eval_recall(const RecallArgs& a) {
  const std::vector<std::string> settings = split_settings(a.sparse);
  if (Status s = check_settings(settings); !s) return report_error(s);
  Result<EvalModel> eval = load_eval_model(a.model, a.device, true, a.linear);
  if (!eval) return report_error(eval.status());
  const ModelConfig& config = eval->model.weights.config;
  std::vector<int> layers = a.layers;
  if (layers.empty()) {
    for (int layer = 0; layer < config.num_layers; layer += 4) layers.push_back(layer);
  }
  Result<std::vector<int32_t>> ids = prose_prompt(*eval, a.text_path, a.length);
  if (!ids) return report_error(ids.status());
  Result<std::map<int, ref::HostQkv>> captured = capture_qkv(*eval, *ids, layers);
  if (!captured) return report_error(captured.status());
  if (!a.dump_qkv_dir.empty()) {
    if (Status s = dump_qkv(*captured, a.dump_qkv_dir); !s) return report_error(s);
  }
  nlohmann::json out;
  out["model"] = a.model;
  out["tokens"] = a.length;
  out["block_q"] = a.block_q;
  out["block_k"] = a.block_k;
  out["settings"] = nlohmann::json::array();
  std::vector<double> recall_sum(settings.size(), 0.0), error_sum(settings.size(), 0.0),
      density_sum(settings.size(), 0.0);
  std::printf("%-6s %-32s %8s %10s %8s\n", "layer", "setting", "recall", "O error", "density");
  for (size_t s = 0; s < settings.size(); ++s)
    out["settings"].push_back({{"setting", settings[s]}, {"layers", {}}});
  for (const auto& [layer, qkv] : *captured) {
    if (settings.empty()) break;  // --sparse "" with --dump-qkv: capture only, no O(L^2) oracle
    const ref::QkvView view = qkv.view();
    Result<ref::AttentionResult> dense = ref::dense_attention(view);
    if (!dense) return report_error(dense.status());
    const IndexGeometry geometry{qkv.shape.seq_len, qkv.shape.num_q_heads, a.block_q, a.block_k, false};
    for (size_t s = 0; s < settings.size(); ++s) {
      std::vector<PatternKind> kinds;
      std::vector<PatternSpec> specs;
      Result<SparseIndex> index = setting_index(settings[s], layer, view, geometry, &kinds, &specs);
      if (!index) return report_error(index.status());
      Result<ref::RecallReport> recall = ref::attention_recall(view, *index);
      Result<ref::AttentionResult> sparse = ref::sparse_attention(view, *index);
      if (!recall || !sparse) return report_error(!recall ? recall.status() : sparse.status());
      Result<std::vector<double>> errors = ref::relative_l2_error_per_head(sparse->o, dense->o, qkv.shape);
      if (!errors) return report_error(errors.status());
      const std::vector<double> costs = search::per_head_cost(*index, qkv.shape.head_dim);
      const double causal = search::per_head_cost(SparseIndex::dense(geometry), qkv.shape.head_dim)[0];
      double error_mean = 0.0, density_mean = 0.0;
      for (int h = 0; h < qkv.shape.num_q_heads; ++h) {
        error_mean += (*errors)[h] / qkv.shape.num_q_heads;
        density_mean += costs[h] / causal / qkv.shape.num_q_heads;
      }
      recall_sum[s] += recall->mean;
      error_sum[s] += error_mean;
      density_sum[s] += density_mean;
      std::printf("%-6d %-32s %8.4f %10.5f %8.3f\n", layer, settings[s].c_str(), recall->mean, error_mean,
                  density_mean);
      std::vector<std::string> kind_names;
      std::string cluster_heads;
      for (size_t h = 0; h < kinds.size(); ++h) {
        kind_names.push_back(pattern_kind_name(kinds[h]));
        if (kinds[h] == PatternKind::BLOCK_CLUSTER && specs[h].has_alternative()) {
          cluster_heads += (cluster_heads.empty() ? "" : ",") + std::to_string(h);
        }
      }
      if (std::any_of(specs.begin(), specs.end(),
                      [](const PatternSpec& x) { return x.chooses_alternative(); })) {
        std::printf("       runtime choice: block-cluster on heads [%s], interval-slash on the others\n",
                    cluster_heads.c_str());
      }
      out["settings"][s]["layers"].push_back({{"layer", layer},
                                              {"recall_per_head", recall->per_head},
                                              {"o_error_per_head", *errors},
                                              {"recall", recall->mean},
                                              {"o_error", error_mean},
                                              {"density", density_mean},
                                              {"kind_per_head", kind_names}});
    }
  }
  const double n = static_cast<double>(captured->size());
  for (size_t s = 0; s < settings.size(); ++s) {
    out["settings"][s]["mean_recall"] = recall_sum[s] / n;
    out["settings"][s]["mean_o_error"] = error_sum[s] / n;
    out["settings"][s]["mean_density"] = density_sum[s] / n;
    std::printf("%-6s %-32s %8.4f %10.5f %8.3f\n", "mean", settings[s].c_str(), recall_sum[s] / n,
                error_sum[s] / n, density_sum[s] / n);
  }
  if (!a.out_path.empty()) {
    std::ofstream file(a.out_path);
    if (!file || !(file << out.dump(1) << "\n")) {
      return report_error(make_error(StatusCode::IO_ERROR, "cannot write {}", a.out_path));
    }
  }
  return 0;
}

}  // namespace sacc::cli
