// `sacc calibrate`: measures, on this device and for this model shape and sparse setting, whole prefills with
// dense and with sparse attention at a ladder of prompt lengths, finds the break-even (bisecting between the
// two ladder points around it) and stores it in the calibration cache that `--attention auto` reads
// (runtime/auto_calibration.h). Real prose when the model has a tokenizer: sparse indices, hence sparse
// cost, depend on the input.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <memory>
#include <span>

#include "attention/kernel_tile.h"
#include "core/device_info.h"
#include "runtime/attention_policy.h"
#include "runtime/auto_calibration.h"
#include "sacc_commit.h"  // generated: SACC_GIT_COMMIT
#include "tools/sacc/commands.h"
#include "tools/sacc/context_option.h"
#include "tools/sacc/eval_common.h"

namespace sacc::cli {
namespace {

// The break-even is found to this many tokens: four query tiles of the flash kernels.
constexpr int64_t kResolution = 4 * kTileBlockQ;
constexpr int64_t kShortestLength = 1024;

struct CalibrateArgs {
  std::string model;
  std::string device;
  std::string pattern;
  std::string pattern_config;
  std::string text_path;
  int64_t max_length = 0;  // 0: the model's context
  int64_t max_context = 0;
  int repeats = 3;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

class Calibrator {
 public:
  Calibrator(const EvalModel& eval, std::vector<int32_t> ids, int repeats)
      : eval_(eval), ids_(std::move(ids)), repeats_(repeats) {}

  Status init(const CalibrateArgs& a) {
    const ModelConfig& config = eval_.model.weights.config;
    for (int which = 0; which < 2; ++which) {
      BackendOptions options;
      options.device = eval_.device;
      options.show_progress = false;
      SACC_RETURN_IF_ERROR(configure_attention(config, which ? AttentionMode::SPARSE : AttentionMode::DENSE,
                                               a.pattern, a.pattern_config, options));
      SACC_ASSIGN_OR_RETURN(backends_[which], eval_.device.is_cpu()
                                                  ? make_cpu_backend(eval_.model.weights, options)
                                                  : make_cuda_backend(eval_.model.weights, options));
      SACC_RETURN_IF_ERROR(backends_[which]->reserve(static_cast<int64_t>(ids_.size())));
    }
    return Status::ok();
  }

  // Dense and sparse prefills of the first `tokens` ids, alternating, after one warm-up of each.
  Result<CalibrationPoint> measure(int64_t tokens) {
    const std::span<const int32_t> prompt(ids_.data(), static_cast<size_t>(tokens));
    std::vector<double> seconds[2];
    std::vector<float> logits;
    for (int round = -1; round < repeats_; ++round) {
      for (int which = 0; which < 2; ++which) {
        const auto start = std::chrono::steady_clock::now();
        SACC_RETURN_IF_ERROR(backends_[which]->prefill(prompt, logits));
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (round >= 0) seconds[which].push_back(elapsed);
      }
    }
    if (!backends_[1]->last_prefill_attention().sparse)
      return make_error(StatusCode::INTERNAL, "the sparse prefill of {} tokens ran dense", tokens);
    CalibrationPoint point{tokens, median(seconds[0]), median(seconds[1])};
    std::fprintf(stderr, "calibrate: %7lld tokens  dense %9.4f s  sparse %9.4f s  (%.2fx)\n",
                 static_cast<long long>(tokens), point.dense_seconds, point.sparse_seconds,
                 point.dense_seconds / point.sparse_seconds);
    return point;
  }

 private:
  const EvalModel& eval_;
  std::vector<int32_t> ids_;
  int repeats_;
  std::unique_ptr<Backend> backends_[2];  // dense, sparse
};

int run_calibrate(const CalibrateArgs& a) {
  if (a.repeats < 1) return report_error(make_error(StatusCode::INVALID_ARGUMENT, "-r must be >= 1"));
  Result<EvalModel> eval = load_eval_model(a.model, a.device, /*need_tokenizer=*/false);
  if (!eval) return report_error(eval.status());
  ModelConfig& config = eval->model.weights.config;
  if (Status s = apply_max_context(a.max_context, config); !s) return report_error(s);
  const int64_t longest = a.max_length > 0 ? std::min(a.max_length, config.max_context) : config.max_context;
  if (longest < kShortestLength)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--max-length {} is below {} tokens",
                                   longest, kShortestLength));
  Result<std::vector<int32_t>> ids = prose_ids(eval->model, a.text_path, longest);
  if (!ids) return report_error(ids.status());

  Calibrator calibrator(*eval, std::move(*ids), a.repeats);
  if (Status s = calibrator.init(a); !s) return report_error(s);
  std::vector<CalibrationPoint> points;
  // The ladder: doubling lengths, ending exactly at the longest.
  for (int64_t length = kShortestLength;; length = std::min(2 * length, longest)) {
    Result<CalibrationPoint> point = calibrator.measure(length);
    if (!point) return report_error(point.status());
    points.push_back(*point);
    if (length == longest) break;
  }
  // Bisection between the last ladder point where sparse loses and the break-even after it.
  for (;;) {
    const int64_t from = break_even_from_points(points);
    const auto at =
        std::find_if(points.begin(), points.end(), [&](const auto& p) { return p.tokens == from; });
    if (at == points.end() || at == points.begin()) break;
    const int64_t below = std::prev(at)->tokens;
    if (from - below <= kResolution) break;
    const int64_t middle = (below + from) / 2 / kResolution * kResolution;
    if (middle <= below) break;
    Result<CalibrationPoint> point = calibrator.measure(middle);
    if (!point) return report_error(point.status());
    points.insert(at, *point);
  }

  Calibration calibration;
  calibration.key = calibration_key(config, eval->device, sparse_setting_name(a.pattern, a.pattern_config));
  calibration.points = points;
  calibration.break_even = break_even_from_points(points);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  calibration.date = date;
  calibration.commit = SACC_GIT_COMMIT;
  if (Status s = store_calibration(calibration); !s) return report_error(s);
  if (calibration.break_even == std::numeric_limits<int64_t>::max()) {
    std::printf("calibrate: %s: sparse never beat dense up to %lld tokens; auto stays dense\n",
                calibration.key.id().c_str(), static_cast<long long>(longest));
  } else {
    std::printf("calibrate: %s: auto runs sparse from %lld tokens\n", calibration.key.id().c_str(),
                static_cast<long long>(calibration.break_even));
  }
  std::printf("calibrate: stored in %s\n", calibration_cache_path().c_str());
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& app, CommandBody& body) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "measure dense and sparse prefill on this device for a model and store where sparse starts to pay; "
      "--attention auto (the default) uses it");
  cmd->add_option("-m,--model", args->model, "HF model directory, .gguf file or random:<name>")->required();
  cmd->add_option("--device", args->device, "cpu or cuda[:N] (default: cuda when present)");
  cmd->add_option("--pattern", args->pattern, "the sparse pattern for every head (default: auto's default)");
  cmd->add_option("--pattern-config", args->pattern_config, "a per-head config file (ours or MInference's)")
      ->excludes("--pattern");
  cmd->add_option("--text", args->text_path, "prose for the prompts (default: Debian's Jargon File)");
  cmd->add_option("--max-length", args->max_length, "longest prompt measured (default: the model's context)");
  cmd->add_option("-r,--repeats", args->repeats, "timed prefills per cell, median taken (default 3)");
  add_max_context_option(cmd, args->max_context);
  cmd->callback([&body, args] { body = [args] { return run_calibrate(*args); }; });
}

}  // namespace sacc::cli
