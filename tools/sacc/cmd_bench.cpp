// `sacc bench`: TTFT and peak memory against context length for several attention methods, side by side
// (the paper's Tables 1-2 and Figures 1-2), with optional HF transformers cells merged in from
// bench/hf_baseline.py's JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#ifdef SACC_WITH_CUDA
#include "core/cuda/device_memory.h"
#endif
#include "core/device_info.h"
#include "model/model_loader.h"
#include "runtime/attention_policy.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "sacc_commit.h"  // generated: SACC_GIT_COMMIT
#include "tools/sacc/bench_report.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/context_option.h"
#include "tools/sacc/eval_common.h"
#include "tools/sacc/gpu_options.h"
#include "tools/sacc/linear_option.h"
#include "tools/sacc/random_prompt.h"
#include "tools/sacc/threads_option.h"

namespace sacc::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string contexts;  // empty: kDefaultContexts up to the model's window
  std::string methods = "dense,sparse,auto";
  int repeats = 3;
  int warmup = 1;
  std::string format = "md";
  std::string out_path;
  std::string json_path;
  std::string plot_dir;
  std::string compare_path;
  std::string device;
  std::string pattern;
  std::string pattern_config;
  std::string text_path;  // real prose prompts instead of random ids
  int64_t chunk = 0;      // 0: the backend's default (linear_chunk_rows)
  std::string linear = "bf16";
  uint64_t seed = 0;
  int64_t max_context = 0;
  GpuArgs gpu;
  std::vector<std::string> argv;
};

// Without --ctx: these lengths, those past the model's window (after --max-context) left out.
constexpr int64_t kDefaultContexts[] = {1000, 4000, 8000, 16000, 32000, 64000, 128000};

Result<std::vector<int64_t>> parse_contexts(const std::string& text) {
  std::vector<int64_t> contexts;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    char* end = nullptr;
    const long long value = std::strtoll(item.c_str(), &end, 10);
    int64_t scale = 1;
    if (end && (*end == 'K' || *end == 'k')) {
      scale = 1024;
      ++end;
    }
    if (item.empty() || *end != '\0' || value < 1) {
      return make_error(StatusCode::INVALID_ARGUMENT,
                        "--ctx: '{}' is not a positive token count (e.g. 8000 or 8K)", item);
    }
    contexts.push_back(value * scale);
  }
  if (contexts.empty()) return make_error(StatusCode::INVALID_ARGUMENT, "--ctx lists no lengths");
  return contexts;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// Tokens between the starts of consecutive prose prompts: each repetition reads another window of the text.
constexpr int64_t kProseStride = 1024;

// "sacc-dense", "sacc-dense-fp8" (--linear fp8), with the GPU split's suffix (method_label).
std::string cell_label(const std::string& method, const BackendOptions& options) {
  const std::string linear = options.linear == LinearMode::FP8 ? "-fp8" : "";
  return method_label("sacc-" + method + linear, options);
}

// One (method, context) cell: warm-up, then `repeats` timed prefills of fresh prompts: random ids, or windows
// of `prose` (--text; sparse indices, hence sparse cost, depend on the input).
BenchCell run_cell(Backend& backend, const std::string& method, int64_t ctx, const ModelConfig& config,
                   const Device& device, const BackendOptions& options, const BenchArgs& a,
                   const std::vector<int32_t>& prose) {
  BenchCell cell;
  cell.method = cell_label(method, options);
  cell.ctx = ctx;
  const Result<AttentionMode> mode = parse_attention_mode(method);
  MemoryPlan plan = plan_memory(config, kv_positions_needed(ctx, 1), a.chunk, device, 0,
                                mode.is_ok() && attention_needs_separate_output(*mode), 1, options.linear);
  // Several GPUs: the backend's placement was checked for the longest context; the caps bound the rest.
  if (options.gpus.size() > 1) plan.available = 0;
  if (Status fits = check_plan(plan, config); !fits) {
    cell.status = fits.code() == StatusCode::OUT_OF_MEMORY ? "oom" : "error";
    cell.error = fits.message();
    return cell;
  }
  GenerateOptions gen;
  gen.max_new_tokens = 1;
  std::vector<double> times;
  for (int rep = 0; rep < a.warmup + a.repeats; ++rep) {
#ifdef SACC_WITH_CUDA
    if (!device.is_cpu() && rep == a.warmup) {
      DeviceAllocator::reset_peak(device.index);
      for (int gpu : options.gpus) DeviceAllocator::reset_peak(gpu);
    }
#endif
    std::vector<int32_t> prompt;
    if (prose.empty()) {
      prompt = random_prompt(ctx, config, a.seed + 1000 * ctx + rep);
    } else {
      prompt.assign(prose.begin() + rep * kProseStride, prose.begin() + rep * kProseStride + ctx);
      if (config.bos_token >= 0 && prose.front() == config.bos_token) prompt.front() = config.bos_token;
    }
    Result<GenerationMetrics> metrics = generate(backend, prompt, gen, [](int32_t) {});
    if (!metrics) {
      cell.status = metrics.status().code() == StatusCode::OUT_OF_MEMORY ? "oom" : "error";
      cell.error = metrics.status().message();
      return cell;
    }
    if (rep < a.warmup) continue;
    times.push_back(metrics->ttft_seconds * 1e3);
    cell.sparse_prefill = metrics->prefill_attention.sparse;
    cell.attention_density = metrics->prefill_attention.density;
    double total = 0.0;
    cell.peak_mib.clear();
    for (const DeviceMemoryReport& d : metrics->memory) {
      if (d.device == "cpu") {
        // The engine's accounting, and next to it what the process really held (RSS high-water mark).
        const double mib = static_cast<double>(d.peak_allocated) / (1024.0 * 1024.0);
        cell.peak_mib.emplace_back("cpu", mib);
        cell.peak_mib.emplace_back("cpu_rss_hwm", static_cast<double>(d.peak_in_use) / (1024.0 * 1024.0));
        total += mib;
        continue;
      }
      const double mib = static_cast<double>(std::max(d.peak_allocated, d.peak_in_use)) / (1024.0 * 1024.0);
      std::string name = d.device;
      if (name.rfind("cuda:", 0) == 0) name = "gpu" + name.substr(5);
      cell.peak_mib.emplace_back(name, mib);
      total += mib;
    }
    cell.peak_mib.emplace_back("total", total);
  }
  std::sort(times.begin(), times.end());
  cell.ttft_median_ms = times[times.size() / 2];
  if (times.size() % 2 == 0)
    cell.ttft_median_ms = 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
  cell.ttft_min_ms = times.front();
  cell.ttft_max_ms = times.back();
  cell.prefill_tok_s = static_cast<double>(ctx) / (cell.ttft_median_ms / 1e3);
  return cell;
}

Status write_output(const std::string& path, const std::string& text) {
  if (path.empty()) {
    std::fputs(text.c_str(), stdout);
    return Status::ok();
  }
  std::ofstream out(path);
  if (!out || !(out << text)) return make_error(StatusCode::IO_ERROR, "-o: cannot write {}", path);
  return Status::ok();
}

int run_bench(const BenchArgs& a) {
  Result<std::vector<int64_t>> contexts =
      a.contexts.empty() ? Result<std::vector<int64_t>>(std::vector<int64_t>()) : parse_contexts(a.contexts);
  if (!contexts) return report_error(contexts.status());
  if (a.repeats < 1) return report_error(make_error(StatusCode::INVALID_ARGUMENT, "-r must be >= 1"));
  const Result<LinearMode> linear = parse_linear_mode(a.linear);
  if (!linear) return report_error(linear.status());
  if (a.format != "md" && a.format != "csv" && a.format != "json") {
    return report_error(
        make_error(StatusCode::INVALID_ARGUMENT, "--format {}: use md, csv or json", a.format));
  }
  const std::vector<std::string> methods = split_list(a.methods);
  std::vector<AttentionMode> modes;
  for (const std::string& method : methods) {
    Result<AttentionMode> mode = parse_attention_mode(method);
    if (!mode) return report_error(mode.status());
    modes.push_back(*mode);
  }
  const bool cuda = a.device.empty() ? cuda_device_count() > 0 : a.device.rfind("cuda", 0) == 0;
  Result<Device> device = parse_device(a.device.empty() ? (cuda ? "cuda" : "cpu") : a.device);
  if (!device) return report_error(device.status());
  BackendOptions gpu_options;
  if (Status s = apply_gpu_args(a.gpu, *device, gpu_options); !s) return report_error(s);

  BenchReport report;
  if (!a.compare_path.empty()) {
    Result<std::vector<BenchCell>> other = read_cells_json(a.compare_path);
    if (!other) return report_error(other.status());
    report.cells = std::move(other).value();
  }

  ModelLoadOptions load;
  load.seed = a.seed;
  load.load_tokenizer = !a.text_path.empty();
  Result<LoadedModel> model = load_model(a.model, load);
  if (!model) return report_error(model.status());
  if (Status s = apply_max_context(a.max_context, model->weights.config); !s) return report_error(s);
  if (a.contexts.empty()) {
    for (int64_t ctx : kDefaultContexts)
      if (ctx <= model->weights.config.max_context) contexts->push_back(ctx);
    if (contexts->empty())
      return report_error(make_error(StatusCode::INVALID_ARGUMENT,
                                     "no default length fits the model's window of {} tokens; give --ctx",
                                     model->weights.config.max_context));
  }
  const int64_t longest = *std::max_element(contexts->begin(), contexts->end());
  if (Status s = check_within_context(longest, "--ctx", model->weights.config); !s) return report_error(s);
  std::vector<int32_t> prose;
  if (!a.text_path.empty()) {
    if (!model->maybe_tokenizer)
      return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--text needs a model with a tokenizer"));
    Result<std::vector<int32_t>> ids =
        prose_ids(*model, a.text_path, longest + kProseStride * (a.warmup + a.repeats));
    if (!ids) return report_error(ids.status());
    prose = std::move(*ids);
  }
  const ModelConfig& config = model->weights.config;

  std::string command = "sacc";
  for (const std::string& arg : a.argv) command += " " + arg;
  report.meta = {{"model", a.model},
                 {"device", device->to_string()},
                 {"commit", SACC_GIT_COMMIT},
                 {"date", utc_now()},
                 {"command", command},
                 {"repeats", std::to_string(a.repeats)},
                 {"linear", linear_mode_name(*linear)}};
  report.meta.push_back(
      {"prompts", a.text_path.empty() ? std::string("random ids") : "prose: " + a.text_path});
  if (gpu_options.gpus.size() > 1) {
    report.meta.push_back({"gpus", a.gpu.gpus});
    report.meta.push_back({"split", a.gpu.split});
  }
  if (!a.gpu.gpu_mem.empty()) report.meta.push_back({"gpu_mem", a.gpu.gpu_mem});
  if (!device->is_cpu()) {
    if (Result<GpuInfo> gpu = query_gpu(device->index); gpu) {
      report.meta.push_back({"gpu", gpu->name});
      report.meta.push_back({"driver", fmt::format("CUDA driver API {}", gpu->driver_version)});
    }
  }

  for (size_t m = 0; m < modes.size(); ++m) {
    BackendOptions options = gpu_options;
    options.device = *device;
    options.chunk = a.chunk;
    options.linear = *linear;
    options.show_progress = false;
    options.max_tokens = kv_positions_needed(longest, 1);
    if (Status s = configure_attention(config, modes[m], a.pattern, a.pattern_config, options); !s) {
      return report_error(s);
    }
    if (modes[m] == AttentionMode::AUTO)
      report.meta.push_back({"auto", describe_auto_choice(options, config.max_context)});
    Result<std::unique_ptr<Backend>> backend = device->is_cpu() ? make_cpu_backend(model->weights, options)
                                                                : make_cuda_backend(model->weights, options);
    // A placement over several GPUs that cannot hold the longest context fails here: every cell says why.
    if (!backend && backend.status().code() != StatusCode::OUT_OF_MEMORY)
      return report_error(backend.status());
    bool out_of_memory = !backend;
    for (int64_t ctx : *contexts) {
      BenchCell cell;
      if (out_of_memory) {  // a longer prompt than one that did not fit will not fit either
        cell.method = cell_label(methods[m], options);
        cell.ctx = ctx;
        cell.status = "oom";
        if (!backend) cell.error = backend.status().message();
      } else {
        cell = run_cell(**backend, methods[m], ctx, config, *device, options, a, prose);
        out_of_memory = cell.status == "oom";
      }
      std::fprintf(stderr, "bench: %-12s ctx %7lld: %s\n", cell.method.c_str(), static_cast<long long>(ctx),
                   cell.status == "ok"
                       ? fmt::format("TTFT {:.1f} ms, peak {:.0f} MiB", cell.ttft_median_ms,
                                     cell.peak_mib.empty() ? 0.0 : cell.peak_mib.back().second)
                             .c_str()
                       : (cell.status + ": " + cell.error).c_str());
      report.cells.push_back(cell);
    }
  }

  const std::string text = a.format == "md"    ? render_markdown(report)
                           : a.format == "csv" ? render_csv(report)
                                               : render_json(report);
  if (Status s = write_output(a.out_path, text); !s) return report_error(s);
  if (!a.json_path.empty()) {
    if (Status s = write_output(a.json_path, render_json(report)); !s) return report_error(s);
  }
  if (!a.plot_dir.empty()) {
    if (Status s = write_plots(report, a.plot_dir); !s) return report_error(s);
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, CommandBody& body, int argc, char** argv) {
  auto args = std::make_shared<BenchArgs>();
  for (int i = 1; i < argc; ++i) args->argv.emplace_back(argv[i]);
  CLI::App* cmd = app.add_subcommand(
      "bench", "TTFT and peak memory against prompt length for several attention methods (tables and plots)");
  cmd->add_option("-m,--model", args->model, "HF model directory, .gguf file or random:<name>")->required();
  cmd->add_option(
      "--ctx", args->contexts,
      "comma-separated prompt lengths, e.g. 1000,8K,128K (default 1K, 4K, 8K, ... 128K, up to the "
      "model's window; a length past it needs --max-context)");
  cmd->add_option(
      "--attention", args->methods,
      "comma-separated methods among auto, dense, cudnn, eager, sparse (default dense,sparse,auto)");
  cmd->add_option("-r,--repeats", args->repeats,
                  "timed repetitions per cell; the median is reported (default 3)");
  cmd->add_option("--warmup", args->warmup, "untimed runs before each cell (default 1)");
  cmd->add_option("-o,--format", args->format, "md (tables like the paper's), csv or json (default md)");
  cmd->add_option("--out", args->out_path, "write the table to this file instead of stdout");
  cmd->add_option("--json", args->json_path, "also write the results as JSON to this file");
  cmd->add_option("--plot", args->plot_dir, "write ttft.png and memory.png (gnuplot) into this folder");
  cmd->add_option("--compare", args->compare_path,
                  "merge cells from another run's JSON (bench/hf_baseline.py)");
  cmd->add_option("--device", args->device, "cpu or cuda[:N] (default: cuda when present)");
  cmd->add_option("--pattern", args->pattern,
                  fmt::format("one sparse pattern for every head (default {})", kDefaultSparsePattern));
  cmd->add_option("--pattern-config", args->pattern_config, "per-head patterns: our JSON or MInference's");
  cmd->add_option("--text", args->text_path,
                  "prompts cut from this prose (plain or .gz; needs a tokenizer) instead of random ids");
  add_chunk_option(cmd, args->chunk);
  add_linear_option(cmd, args->linear);
  cmd->add_option("--seed", args->seed, "random weights and prompts (default 0)");
  add_max_context_option(cmd, args->max_context);
  add_threads_option(cmd);
  add_gpu_options(*cmd, args->gpu);
  cmd->callback([&body, args] { body = [args] { return run_bench(*args); }; });
}

}  // namespace sacc::cli
