// Shared pieces of `sacc eval` and `sacc search`: real prose for haystacks and calibration, model loading,
// and building a backend for one attention setting ("dense", a pattern string, or "config:FILE").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/model_loader.h"
#include "runtime/backend.h"

namespace sacc::cli {

// Long real English prose: `path` (plain text or .gz), or by default the Jargon File from Debian's
// jargon-text package. The text is cleaned to printable ASCII lines.
Result<std::string> load_prose(const std::string& path);

// `length` prompt ids of that prose (repeated when it is shorter), BOS first when the model adds one; for a
// model without a tokenizer (random:<name>) seeded random ids.
Result<std::vector<int32_t>> prose_ids(const LoadedModel& model, const std::string& text_path,
                                       int64_t length);

struct EvalModel {
  LoadedModel model;
  Device device;
  LinearMode linear = LinearMode::BF16;  // every backend of the evaluation (--linear)
};

// Loads `spec` for `device_text` (empty: cuda when present). Evaluations need real text: without
// `need_tokenizer` a model without one (random:<name>) is accepted too. `linear`: --linear's text (bf16|fp8).
Result<EvalModel> load_eval_model(const std::string& spec, const std::string& device_text,
                                  bool need_tokenizer = true, const std::string& linear = "bf16");

// A backend for one setting: "dense", a pattern string applied to every head ("interval-slash:256,1024"), or
// "config:FILE" (per-head config, ours or MInference's). Sparse settings run sparse at every length. The
// linear layers as `model.linear` says.
Result<std::unique_ptr<Backend>> make_setting_backend(const EvalModel& model, const std::string& setting,
                                                      BackendOptions options);

// Greedy continuation of `prompt` (at most `max_new_tokens`, stopping at the model's stop tokens), decoded.
Result<std::string> greedy_continuation(Backend& backend, const EvalModel& model,
                                        const std::vector<int32_t>& prompt, int64_t max_new_tokens);

std::vector<std::string> split_settings(const std::string& text);  // ';'-separated

// Writes `script` beside `png_path` (as png_path + ".gp") and runs gnuplot on it. Plots are extras beside the
// JSON and markdown results, so a missing or failing gnuplot only prints a warning on stderr.
void plot_or_warn(const std::string& script, const std::string& png_path);

}  // namespace sacc::cli
