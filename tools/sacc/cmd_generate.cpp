// `sacc generate`: load a model, prefill a prompt, stream the continuation, then print one timing line.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/log.h"
#include "model/model_loader.h"
#include "runtime/engine.h"
#include "tools/sacc/commands.h"
#include "tools/sacc/engine_setup.h"
#include "tools/sacc/random_prompt.h"

namespace sacc::cli {
namespace {

struct GenerateArgs {
  EngineArgs engine;  // -m, --seed (also the sampling seed), device, attention and memory flags
  std::string prompt;
  std::string prompt_file;
  int64_t prompt_tokens = 0;
  int64_t max_new_tokens = 128;
  bool chat = false;
  std::string system;
  float temperature = 0.0f;
  float top_p = 1.0f;
  bool json = false;
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::NOT_FOUND, "-f {}: cannot open", path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The prompt's token ids from its text (-p, or -f's file read before the model loads): from the tokenizer
// (plain or chat), or for models without one (random:) the text's bytes taken as ids, or --prompt-tokens
// seeded random ids for benchmarks.
Result<std::vector<int32_t>> prompt_ids(const GenerateArgs& a, const std::string& text,
                                        const LoadedModel& model) {
  const ModelConfig& config = model.weights.config;
  if (a.prompt_tokens > 0) {
    return random_prompt(a.prompt_tokens, config, a.engine.seed + 1);
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
  if (a.prompt.empty() == a.prompt_file.empty() && a.prompt_tokens == 0)
    return report_error(make_error(StatusCode::INVALID_ARGUMENT, "give exactly one of -p TEXT or -f FILE"));
  // A missing prompt file fails before a model of several GB is loaded.
  Result<std::string> prompt_text =
      a.prompt_file.empty() ? Result<std::string>(a.prompt) : read_text(a.prompt_file);
  if (!prompt_text) return report_error(prompt_text.status());
  Result<EngineSetup> setup = load_engine(a.engine, a.json);
  if (!setup) return report_error(setup.status());
  const ModelConfig& config = setup->model.weights.config;
  const Device& device = setup->device;
  BackendOptions& options = setup->options;
  Result<std::vector<int32_t>> prompt = prompt_ids(a, *prompt_text, setup->model);
  if (!prompt) return report_error(prompt.status());
  std::string placement;
  if (Status fits = check_run_fits(a.engine, *setup, static_cast<int64_t>(prompt->size()), a.max_new_tokens,
                                   &placement);
      !fits)
    return report_error(fits);
  if (options.gpus.size() > 1) {
    options.max_tokens = kv_positions_needed(static_cast<int64_t>(prompt->size()), a.max_new_tokens);
    if (!a.json) std::fputs(placement.c_str(), stderr);
  }
  const int64_t prompt_tokens = static_cast<int64_t>(prompt->size());
  Result<std::unique_ptr<Backend>> backend = make_backend(*setup);
  if (!backend)
    return report_error(with_run_plan(backend.status(), a.engine, *setup, prompt_tokens, a.max_new_tokens));
  const LoadedModel* model = &setup->model;

  GenerateOptions gen;
  gen.max_new_tokens = a.max_new_tokens;
  gen.sampling = {a.temperature, a.top_p, a.engine.seed};
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
    return report_error(with_run_plan(metrics.status(), a.engine, *setup, prompt_tokens, a.max_new_tokens));
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
    out["device"] = device.to_string();
    out["attention"] = a.engine.attention;
    out["linear"] = a.engine.linear;
    if (options.gpus.size() > 1) {
      out["gpus"] = options.gpus;
      out["split"] = a.engine.gpu.split;
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
  add_engine_options(*cmd, args->engine);
  cmd->add_option("-p,--prompt", args->prompt, "prompt text");
  cmd->add_option("-f,--file", args->prompt_file, "read the prompt from a file");
  cmd->add_option("--prompt-tokens", args->prompt_tokens, "benchmark: a seeded random prompt of N token ids");
  cmd->add_option("-n,--max-new-tokens", args->max_new_tokens, "tokens to generate (default 128)");
  cmd->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template as a user turn");
  cmd->add_option("--system", args->system, "system message for --chat");
  cmd->add_option("--temperature", args->temperature, "0 = greedy (default)");
  cmd->add_option("--top-p", args->top_p, "nucleus sampling mass (default 1)");
  cmd->add_option("--seed", args->engine.seed, "sampling and random-weight seed (default 0)");
  cmd->add_flag("--json", args->json, "one JSON object (text and metrics) instead of streamed text");
  cmd->callback([&body, args] { body = [args] { return run_generate(*args); }; });
}

}  // namespace sacc::cli
