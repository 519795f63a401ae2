// `sacc eval ppl`: per-token loss over the last positions of a long real text, dense against each sparse
// setting: perplexity, its relative change, and the largest |logit difference| over the scored positions.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tools/sacc/commands.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/eval_quality.h"
#include "tools/sacc/qkv_capture.h"

namespace sacc::cli {
namespace {

struct ScoredRun {
  std::vector<float> logits;  // [rows, V] logits of the last `rows` prompt positions
  double perplexity = 0.0;
};

Result<ScoredRun> score(const EvalModel& eval, const std::string& setting, const std::vector<int32_t>& ids,
                        int64_t rows) {
  BackendOptions options;
  options.show_progress = false;
  options.prefill_logit_rows = rows;
  SACC_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, make_setting_backend(eval, setting, options));
  SACC_RETURN_IF_ERROR(backend->reserve(static_cast<int64_t>(ids.size())));
  ScoredRun run;
  SACC_RETURN_IF_ERROR(backend->prefill(ids, run.logits));
  const int64_t vocab = eval.model.weights.config.vocab;
  if (static_cast<int64_t>(run.logits.size()) != rows * vocab) {
    return make_error(StatusCode::INTERNAL, "prefill returned {} logits, expected {}", run.logits.size(),
                      rows * vocab);
  }
  // Row r is position p = L - rows + r; it predicts token p + 1, known for all rows but the last.
  const int64_t first = static_cast<int64_t>(ids.size()) - rows;
  double loss = 0.0;
  for (int64_t r = 0; r + 1 < rows; ++r) {
    const float* row = run.logits.data() + r * vocab;
    const double top = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - top);
    loss += top + std::log(sum) - row[ids[first + r + 1]];
  }
  run.perplexity = std::exp(loss / static_cast<double>(rows - 1));
  return run;
}

}  // namespace

int run_eval_ppl(const PplArgs& a) {
  Result<EvalModel> eval = load_eval_model(a.model, a.device, true, a.linear);
  if (!eval) return report_error(eval.status());
  Result<std::vector<int32_t>> ids = prose_prompt(*eval, a.text_path, a.length);
  if (!ids) return report_error(ids.status());
  const int64_t rows = std::clamp<int64_t>(a.last + 1, 2, a.length);
  Result<ScoredRun> dense = score(*eval, "dense", *ids, rows);
  if (!dense) return report_error(dense.status());
  nlohmann::json out;
  out["model"] = a.model;
  out["tokens"] = a.length;
  out["linear"] = a.linear;
  out["scored_positions"] = rows - 1;
  out["dense_perplexity"] = dense->perplexity;
  out["settings"] = nlohmann::json::array();
  std::printf("ppl %-32s %10.4f\n", "dense", dense->perplexity);
  for (const std::string& setting : split_settings(a.sparse)) {
    Result<ScoredRun> sparse = score(*eval, setting, *ids, rows);
    if (!sparse) return report_error(sparse.status().with_context("setting '" + setting + "'"));
    double max_delta = 0.0;
    for (size_t i = 0; i < sparse->logits.size(); ++i) {
      max_delta = std::max(max_delta, static_cast<double>(std::fabs(sparse->logits[i] - dense->logits[i])));
    }
    const double change = 100.0 * (sparse->perplexity / dense->perplexity - 1.0);
    std::printf("ppl %-32s %10.4f  (%+.3f %%, max |delta logit| %.4f)\n", setting.c_str(), sparse->perplexity,
                change, max_delta);
    out["settings"].push_back({{"setting", setting},
                               {"perplexity", sparse->perplexity},
                               {"delta_percent", change},
                               {"max_abs_delta_logit", max_delta}});
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
