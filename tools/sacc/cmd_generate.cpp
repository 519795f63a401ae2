// `sacc generate`: load a model, prefill a prompt, stream the continuation, then print one timing line.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/device_info.h"
#include "core/log.h"
#include "model/model_loader.h"
#include "runtime/attention_policy.h"
#include "runtime/engine.h"
#include "runtime/memory_plan.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/context_option.h"
#include "tools/sacc/gpu_options.h"
#include "tools/sacc/random_prompt.h"

namespace sacc::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  int64_t prompt_tokens = 0;
  int64_t max_new_tokens = 128;
  bool chat = false;
  std::string system;
  float temperature = 0.0f;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string device;
  std::string attention = "auto";
  std::string pattern;
  std::string pattern_config;
  int64_t chunk = 8192;
  std::string budget;
  int64_t max_context = 0;
  GpuArgs gpu;
  bool json = false;
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::NOT_FOUND, "-f {}: cannot open", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The prompt's token ids: from the tokenizer (plain or chat), or for models without one (random:) the text's
// bytes taken as ids, or --prompt-tokens seeded random ids for benchmarks.
Result<std::vector<int32_t>> prompt_ids(const GenerateArgs& a, const LoadedModel& model) {
  const ModelConfig& config = model.weights.config;
  if (a.prompt_tokens > 0) {
    return random_prompt(a.prompt_tokens, config, a.seed + 1);
  }
  std::string text = a.prompt;
  if (!a.prompt_file.empty()) {
    SACC_ASSIGN_OR_RETURN(text, read_text(a.prompt_file));
  }
  if (!model.maybe_tokenizer) {
    if (a.chat) return make_error(StatusCode::INVALID_ARGUMENT, "--chat needs a model with a tokenizer");
    std::vector<int32_t> ids;
    if (config.bos_token >= 0) ids.push_back(config.bos_token);
    for (unsigned char c : text) ids.push_back(static_cast<int32_t>(c % config.vocab));
    return ids;
  }
  const Tokenizer& tok = *model.maybe_tokenizer;
  if (a.chat) {
    std::vector<ChatMessage> messages;
    if (!a.system.empty()) messages.push_back({"system", a.system});
    messages.push_back({"user", text});
    return tok.encode_chat(messages, true);
  }
  return tok.encode(text, tok.adds_bos());
}

int run_generate(const GenerateArgs& a) {
  const bool cuda = a.device.empty() ? cuda_device_count() > 0 : a.device.rfind("cuda", 0) == 0;
  Result<Device> device = parse_device(a.device.empty() ? (cuda ? "cuda" : "cpu") : a.device);
  if (!device) return report_error(device.status());
  BackendOptions options;
  if (Status s = apply_gpu_args(a.gpu, *device, options); !s) return report_error(s);
  Result<AttentionMode> mode = parse_attention_mode(a.attention);
  if (!mode) return report_error(mode.status());
  if (a.chunk < 1)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "--chunk {} must be >= 1", a.chunk));
  if (a.prompt.empty() == a.prompt_file.empty() && a.prompt_tokens == 0)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "give exactly one of -p TEXT or -f FILE"));

  ModelLoadOptions load;
  load.seed = a.seed;
  load.dequantize_to = device->is_cpu() ? DType::F32 : DType::BF16;
  Result<LoadedModel> model = load_model(a.model, load);
  if (!model) return report_error(model.status());
  if (Status s = apply_max_context(a.max_context, model->weights.config); !s) return report_error(s);
  const ModelConfig& config = model->weights.config;
  Result<std::vector<int32_t>> prompt = prompt_ids(a, *model);
  if (!prompt) return report_error(prompt.status());

  options.device = *device;
  options.chunk = a.chunk;
  if (Status s = configure_attention(config, *mode, a.pattern, a.pattern_config, options); !s)
    return report_error(s);
  if (*mode == AttentionMode::AUTO && !a.json)
    SACC_LOG_INFO("auto: sparse prefill {} (break-even from {})",
                  options.sparse_min_length > config.max_context
                      ? std::string("never up to the context")
                      : fmt::format("from {} tokens", options.sparse_min_length),
                  options.auto_basis);
  const int64_t tokens = kv_positions_needed(static_cast<int64_t>(prompt->size()), a.max_new_tokens);
  uint64_t attention_bytes = 0;
  if (!device->is_cpu()) {
    Result<uint64_t> bytes =
        cuda_attention_workspace_bytes(config, options, static_cast<int64_t>(prompt->size()));
    if (!bytes) return report_error(bytes.status());
    attention_bytes = *bytes;
  }
  MemoryPlan plan = plan_memory(config, tokens, a.chunk, *device, attention_bytes,
                                attention_needs_separate_output(options.attention));
  if (options.gpus.size() > 1) {
    // The per-GPU placement replaces the one-device plan; the context limit still applies.
    plan.available = 0;
    Result<std::string> placement = describe_gpu_placement(config, options, tokens);
    if (!placement) return report_error(placement.status());
    if (!a.json) std::fputs(placement->c_str(), stderr);
  } else {
    const std::string budget = a.budget.empty() ? a.gpu.gpu_mem : a.budget;
    if (Status s = apply_memory_budget(budget, *device, plan); !s) return report_error(s);
  }
  if (Status fits = check_plan(plan, config); !fits) return report_error(fits);

  Result<std::unique_ptr<Backend>> backend = device->is_cpu() ? make_cpu_backend(model->weights, options)
                                                              : make_cuda_backend(model->weights, options);
  if (!backend) return report_error(backend.status());

  GenerateOptions gen;
  gen.max_new_tokens = a.max_new_tokens;
  gen.sampling = {a.temperature, a.top_p, a.seed};
  gen.stop_tokens = model->stop_tokens;
  std::string text;
  std::unique_ptr<StreamingDecoder> decoder;
  if (model->maybe_tokenizer) decoder = std::make_unique<StreamingDecoder>(*model->maybe_tokenizer);
  auto on_token = [&](int32_t id) {
    if (std::find(gen.stop_tokens.begin(), gen.stop_tokens.end(), id) != gen.stop_tokens.end()) return;
    const std::string piece = decoder ? decoder->push(id) : fmt::format("[{}]", id);
    text += piece;
    if (!a.json) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
  };
  Result<GenerationMetrics> metrics = generate(**backend, *prompt, gen, on_token);
  if (!metrics) {
    if (!a.json) std::fputc('\n', stdout);
    return report_error(metrics.status());
  }
  if (decoder) {
    const std::string tail = decoder->finish();
    text += tail;
    if (!a.json) std::fputs(tail.c_str(), stdout);
  }
  if (a.json) {
    nlohmann::json out = nlohmann::json::parse(format_metrics_json(*metrics));
    out["text"] = text;
    out["model"] = config.name;
    out["device"] = device->to_string();
    out["attention"] = a.attention;
    if (options.gpus.size() > 1) {
      out["gpus"] = options.gpus;
      out["split"] = a.gpu.split;
    }
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("\n%s\n", format_metrics_line(*metrics).c_str());
  }
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, CommandBody& body) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd =
      app.add_subcommand("generate", "continue a prompt with a model; print the text and a timing line");
  cmd->add_option("-m,--model", args->model, "HF model directory, .gguf file or random:<name>")->required();
  cmd->add_option("-p,--prompt", args->prompt, "prompt text");
  cmd->add_option("-f,--file", args->prompt_file, "read the prompt from a file");
  cmd->add_option("--prompt-tokens", args->prompt_tokens, "benchmark: a seeded random prompt of N token ids");
  cmd->add_option("-n,--max-new-tokens", args->max_new_tokens, "tokens to generate (default 128)");
  cmd->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template as a user turn");
  cmd->add_option("--system", args->system, "system message for --chat");
  cmd->add_option("--temperature", args->temperature, "0 = greedy (default)");
  cmd->add_option("--top-p", args->top_p, "nucleus sampling mass (default 1)");
  cmd->add_option("--seed", args->seed, "sampling and random-weight seed (default 0)");
  cmd->add_option("--device", args->device, "cpu or cuda[:N] (default: cuda when present)");
  cmd->add_option("--attention", args->attention, "auto|dense|cudnn|eager|sparse (default auto)");
  cmd->add_option("--pattern", args->pattern,
                  fmt::format("one sparse pattern for every head (default {})", kDefaultSparsePattern));
  cmd->add_option("--pattern-config", args->pattern_config, "per-head patterns: our JSON or MInference's");
  cmd->add_option("--chunk", args->chunk, "tokens per linear-layer chunk (default 8192)");
  cmd->add_option("--budget", args->budget,
                  "memory budget of the device, e.g. 24GiB (emulates a smaller card)");
  add_max_context_option(cmd, args->max_context);
  add_gpu_options(*cmd, args->gpu);
  cmd->add_flag("--json", args->json, "one JSON object (text and metrics) instead of streamed text");
  cmd->callback([&body, args] { body = [args] { return run_generate(*args); }; });
}

}  // namespace sacc::cli
