// `sacc eval ruler`: RULER-style long-context tasks (ruler_tasks.h) at several prompt lengths, dense and each
// sparse setting on the same prompts. Every prompt is built once, up front; each setting then answers all of
// them greedily, and is scored per task and length, with the share of its answers that match dense's text.
#include "tools/sacc/eval_ruler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "runtime/engine.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/ruler_report.h"
#include "tools/sacc/ruler_tasks.h"

namespace sacc::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint64_t mix(uint64_t z) {  // splitmix64's finalizer: every input bit moves every output bit
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A seed per prompt, so that a prompt stays the same when other lengths, tasks or sample counts are asked
// for.
uint64_t prompt_seed(uint64_t seed, RulerTask task, int64_t length, int sample) {
  return mix(mix(seed) ^ (static_cast<uint64_t>(task) << 56) ^ (static_cast<uint64_t>(length) << 20) ^
             static_cast<uint64_t>(sample));
}

int64_t answer_tokens(const RulerArgs& a, RulerTask task) {
  return a.max_new_tokens > 0 ? a.max_new_tokens : ruler_answer_tokens(task);
}

// Lengths whose prompt and answer fit the model's context; the others are skipped with a message.
std::vector<int64_t> fitting_lengths(const RulerArgs& a, const std::vector<RulerTask>& tasks,
                                     int64_t context) {
  int64_t answer = 0;
  for (RulerTask task : tasks) answer = std::max(answer, answer_tokens(a, task));
  std::vector<int64_t> lengths;
  for (int64_t length : a.lengths) {
    if (kv_positions_needed(length, answer) > context) {
      std::fprintf(
          stderr,
          "ruler: skipping length %lld: with %lld answer tokens it exceeds the model's context of %lld\n",
          static_cast<long long>(length), static_cast<long long>(answer), static_cast<long long>(context));
      continue;
    }
    lengths.push_back(length);
  }
  return lengths;
}

Status build_prompts(const RulerArgs& a, const Tokenizer& tok, const RulerSource& source, RulerRun& run) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t length : run.lengths) {
    for (RulerTask task : run.tasks) {
      for (int i = 0; i < run.samples; ++i) {
        SACC_ASSIGN_OR_RETURN(RulerSample sample, make_ruler_sample(tok, source, task, length,
                                                                    prompt_seed(a.seed, task, length, i)));
        run.prompts.push_back(std::move(sample));
      }
    }
  }
  std::fprintf(stderr, "ruler: built %zu prompts in %.2f s\n", run.prompts.size(), seconds_since(start));
  return Status::ok();
}

// Answers every prompt with `setting`, filling run.settings.back(); prints a table row per finished length.
Status run_setting(const RulerArgs& a, const EvalModel& eval, const std::string& setting, RulerRun& run) {
  BackendOptions options;
  options.show_progress = false;
  Result<std::unique_ptr<Backend>> backend = make_setting_backend(eval, setting, options);
  if (!backend) return backend.status().with_context("setting '" + setting + "'");
  run.settings.push_back({setting, std::vector<std::string>(run.prompts.size()),
                          std::vector<double>(run.prompts.size(), 0.0), 0.0});
  RulerSettingResult& result = run.settings.back();
  const auto start = std::chrono::steady_clock::now();
  for (size_t l = 0; l < run.lengths.size(); ++l) {
    for (size_t t = 0; t < run.tasks.size(); ++t) {
      for (int i = 0; i < run.samples; ++i) {
        const size_t p = run.prompt_index(l, t, static_cast<size_t>(i));
        const RulerSample& prompt = run.prompts[p];
        Result<std::string> answer =
            greedy_continuation(**backend, eval, prompt.ids, answer_tokens(a, prompt.task));
        if (!answer) return answer.status().with_context("setting '" + setting + "'");
        result.answers[p] = *answer;
        result.scores[p] = score_ruler_answer(prompt.task, prompt.expected, *answer);
        std::fprintf(stderr, "ruler: %-28s len %6lld %-17s %3d/%d: score %.2f\n", setting.c_str(),
                     static_cast<long long>(run.lengths[l]),
                     std::string(ruler_task_name(prompt.task)).c_str(), i + 1, run.samples, result.scores[p]);
      }
    }
    std::printf("%s", ruler_table_row(run, run.settings.size() - 1, l).c_str());
    std::fflush(stdout);
  }
  result.seconds = seconds_since(start);
  std::fprintf(stderr, "ruler: %s answered %zu prompts in %.1f s\n", setting.c_str(), run.prompts.size(),
               result.seconds);
  return Status::ok();
}

}  // namespace

int run_eval_ruler(const RulerArgs& a) {
  Result<std::vector<RulerTask>> tasks = parse_ruler_tasks(a.tasks);
  if (!tasks) return report_error(tasks.status());
  if (a.samples < 1) {
    return report_error(
        make_error(StatusCode::INVALID_ARGUMENT, "--samples must be at least 1, not {}", a.samples));
  }
  Result<EvalModel> eval = load_eval_model(a.model, a.device, true, a.linear);
  if (!eval) return report_error(eval.status());
  Result<std::string> prose = load_prose(a.text_path);
  if (!prose) return report_error(prose.status());
  const Tokenizer& tok = *eval->model.maybe_tokenizer;
  Result<RulerSource> source = prepare_ruler_source(tok, *prose);
  if (!source) return report_error(source.status());

  RulerRun run;
  run.model = a.model;
  run.device = eval->device.to_string();
  run.seed = a.seed;
  run.samples = a.samples;
  run.tasks = *tasks;
  run.lengths = fitting_lengths(a, run.tasks, eval->model.weights.config.max_context);
  if (run.lengths.empty()) {
    return report_error(
        make_error(StatusCode::INVALID_ARGUMENT, "no length in --lengths fits the model's context"));
  }
  if (Status s = build_prompts(a, tok, *source, run); !s) return report_error(s);

  std::printf("%s", ruler_table_header(run).c_str());
  std::vector<std::string> settings{"dense"};
  for (const std::string& s : split_settings(a.sparse)) settings.push_back(s);
  for (const std::string& setting : settings) {
    if (Status s = run_setting(a, *eval, setting, run); !s) return report_error(s);
  }
  if (!a.out_dir.empty()) {
    if (Status s = write_ruler_outputs(run, a.out_dir); !s) return report_error(s);
  }
  return 0;
}

}  // namespace sacc::cli
