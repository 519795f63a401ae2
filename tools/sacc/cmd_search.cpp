// `sacc search`: the kernel-aware per-head pattern search on a real model (DESIGN.md §5). Captures each
// layer's Q/K/V from one prefill of calibration text, searches every layer, writes a head config, and prints
// how the found config compares with the uniform target pattern of equal cost.
#include <cstdio>

#include "model/head_config.h"
#include "search/pattern_search.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/qkv_capture.h"

namespace sacc::cli {
namespace {

struct SearchArgs {
  std::string model;
  std::string device;  // where the calibration prefill runs (the search itself runs on the CPU oracle)
  std::string text_path;
  int64_t length = 2048;
  std::string target = "interval-slash:64,512";
  double density = 0.0;
  std::vector<int> layers;
  std::string out_path = "heads.json";
};

int run_search(const SearchArgs& a) {
  Result<EvalModel> eval = load_eval_model(a.model, a.device);
  if (!eval) return report_error(eval.status());
  const ModelConfig& config = eval->model.weights.config;
  search::SearchOptions options;
  Result<PatternSpec> target = parse_pattern(a.target);
  if (!target) return report_error(target.status());
  options.target = *target;
  options.target_density = a.density;
  if (target->kind == PatternKind::INTERVAL_SLASH && target->vertical > 0) {
    options.interval_slash_ratio = static_cast<double>(target->slash) / static_cast<double>(target->vertical);
  }
  Result<std::vector<int32_t>> ids = prose_prompt(*eval, a.text_path, a.length);
  if (!ids) return report_error(ids.status());
  Result<std::map<int, ref::HostQkv>> captured = capture_qkv(*eval, *ids, a.layers);
  if (!captured) return report_error(captured.status());

  HeadConfig head_config;
  head_config.model = a.model;
  head_config.target = a.density > 0 ? fmt::format("density:{}", a.density) : a.target;
  head_config.block_q = options.block_q;  // the kernel tile: the config is for the kernels to run
  head_config.block_k = options.block_k;
  head_config.estimation = options.estimation;
  head_config.layers.assign(config.num_layers, {});
  double searched = 0.0, uniform = 0.0;
  int counted = 0;
  std::printf("%-6s %-10s %-34s %10s %8s\n", "layer", "head", "pattern", "O error", "recall");
  for (const auto& [layer, qkv] : *captured) {
    Result<search::LayerResult> result = search::search_layer(qkv.view(), options);
    if (!result) return report_error(result.status().with_context(fmt::format("layer {}", layer)));
    for (size_t h = 0; h < result->heads.size(); ++h) {
      const search::Candidate& best = result->heads[h].best;
      head_config.layers[layer].push_back({best.pattern, best.error, best.recall, best.density});
      std::printf("%-6d %-10zu %-34s %10.5f %8.4f\n", layer, h, to_string(best.pattern).c_str(), best.error,
                  best.recall);
      searched += best.error;
      for (const search::Candidate& c : result->heads[h].candidates) {
        if (c.pattern.kind == options.target.kind) uniform += c.error;
      }
      ++counted;
    }
  }
  // Layers not captured (a --layers subset) keep the target pattern, so the file covers the whole model.
  for (auto& heads : head_config.layers) {
    if (heads.empty()) heads.assign(config.num_heads, HeadChoiceRecord{options.target});
  }
  if (Status s = save_head_config(head_config, a.out_path); !s) return report_error(s);
  std::printf("mean O error: searched %.5f, uniform %s at equal cost %.5f  -> %s\n", searched / counted,
              pattern_kind_name(options.target.kind), uniform / counted, a.out_path.c_str());
  return 0;
}

}  // namespace

void add_search_command(CLI::App& app, CommandBody& body) {
  auto args = std::make_shared<SearchArgs>();
  CLI::App* cmd = app.add_subcommand("search", "kernel-aware per-head pattern search on calibration text");
  cmd->add_option("-m,--model", args->model, "HF model directory or .gguf file (needs a tokenizer)")
      ->required();
  cmd->add_option("-f,--file", args->text_path, "calibration text (default: Debian's Jargon File)");
  cmd->add_option(
      "--device", args->device,
      "cpu or cuda[:N] for the calibration prefill that captures Q/K/V (default: cuda when present); "
      "the search scores candidates with the CPU oracle");
  cmd->add_option("--length", args->length, "calibration tokens (default 2048)");
  cmd->add_option(
      "--target", args->target,
      "cost target: the cost of this pattern on the calibration input (default interval-slash:64,512)");
  cmd->add_option("--density", args->density,
                  "cost target as a fraction of dense causal cost (overrides --target)");
  cmd->add_option("--layers", args->layers, "layers to search (default all)")->delimiter(',');
  cmd->add_option("-o,--out", args->out_path, "head config to write (default heads.json)");
  cmd->callback([&body, args] { body = [args] { return run_search(*args); }; });
}

}  // namespace sacc::cli
