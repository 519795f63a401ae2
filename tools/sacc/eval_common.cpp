#include "tools/sacc/eval_common.h"

#include <sys/wait.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/device_info.h"
#include "runtime/attention_policy.h"
#include "runtime/engine.h"
#include "tools/sacc/random_prompt.h"

namespace sacc::cli {
namespace {

constexpr const char* kDefaultProse = "/usr/share/doc/jargon-text/jargon.txt.gz";

}  // namespace

Result<std::string> load_prose(const std::string& path_in) {
  const std::string path = path_in.empty() ? kDefaultProse : path_in;
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (!file) {
    return make_error(StatusCode::NOT_FOUND, "cannot open prose file '{}'{}", path,
                      path_in.empty() ? " (install Debian's jargon-text package or pass --text FILE)" : "");
  }
  std::string raw;
  char buffer[1 << 16];
  int got = 0;
  while ((got = gzread(file, buffer, sizeof buffer)) > 0) raw.append(buffer, got);
  const bool failed = got < 0;
  gzclose(file);
  if (failed) return make_error(StatusCode::CORRUPT_DATA, "'{}': read or decompression failed", path);
  std::string text;
  text.reserve(raw.size());
  for (char c : raw) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || (u >= 32 && u < 127))
      text.push_back(c);
    else if (c == '\t')
      text.push_back(' ');
  }
  if (text.size() < 1000) return make_error(StatusCode::CORRUPT_DATA, "'{}' holds too little text", path);
  return text;
}

Result<std::vector<int32_t>> prose_ids(const LoadedModel& model, const std::string& text_path,
                                       int64_t length) {
  if (!model.maybe_tokenizer) return random_prompt(length, model.weights.config, 1);
  SACC_ASSIGN_OR_RETURN(std::string prose, load_prose(text_path));
  const Tokenizer& tok = *model.maybe_tokenizer;
  // Tokenize only as much text as needed (about 3 characters a token in English prose, with margin).
  prose.resize(std::min<size_t>(prose.size(), static_cast<size_t>(length) * 8));
  std::vector<int32_t> ids = tok.encode(prose, tok.adds_bos());
  if (ids.size() < 16)
    return make_error(StatusCode::INVALID_ARGUMENT, "the prose gives only {} tokens", ids.size());
  const size_t period = ids.size();
  while (static_cast<int64_t>(ids.size()) < length) ids.push_back(ids[ids.size() % period]);
  ids.resize(static_cast<size_t>(length));
  return ids;
}

Result<EvalModel> load_eval_model(const std::string& spec, const std::string& device_text,
                                  bool need_tokenizer, const std::string& linear) {
  EvalModel eval;
  SACC_ASSIGN_OR_RETURN(eval.linear, parse_linear_mode(linear));
  const bool cuda = device_text.empty() ? cuda_device_count() > 0 : device_text.rfind("cuda", 0) == 0;
  SACC_ASSIGN_OR_RETURN(eval.device,
                        parse_device(device_text.empty() ? (cuda ? "cuda" : "cpu") : device_text));
  if (!eval.device.is_cpu() && eval.device.index >= cuda_device_count()) {
    return make_error(StatusCode::UNSUPPORTED, "--device {}: {}; use --device cpu", eval.device.to_string(),
                      !built_with_cuda() ? "this sacc was built without CUDA"
                      : cuda_device_count() == 0
                          ? "no CUDA device is visible to this process"
                          : fmt::format("only {} CUDA device(s) are visible", cuda_device_count()));
  }
  ModelLoadOptions load;
  SACC_ASSIGN_OR_RETURN(eval.model, load_model(spec, load));
  if (need_tokenizer && !eval.model.maybe_tokenizer) {
    return make_error(StatusCode::INVALID_ARGUMENT, "model '{}' has no tokenizer; evals need real text",
                      spec);
  }
  return eval;
}

Result<std::unique_ptr<Backend>> make_setting_backend(const EvalModel& eval, const std::string& setting,
                                                      BackendOptions options) {
  options.device = eval.device;
  options.linear = eval.linear;
  const ModelConfig& config = eval.model.weights.config;
  if (setting == "dense") {
    SACC_RETURN_IF_ERROR(configure_attention(config, AttentionMode::DENSE, "", "", options));
  } else if (setting == "cudnn") {
    SACC_RETURN_IF_ERROR(configure_attention(config, AttentionMode::CUDNN, "", "", options));
  } else if (setting.rfind("config:", 0) == 0) {
    SACC_RETURN_IF_ERROR(configure_attention(config, AttentionMode::SPARSE, "", setting.substr(7), options));
  } else {
    SACC_RETURN_IF_ERROR(configure_attention(config, AttentionMode::SPARSE, setting, "", options));
  }
  return eval.device.is_cpu() ? make_cpu_backend(eval.model.weights, options)
                              : make_cuda_backend(eval.model.weights, options);
}

Result<std::string> greedy_continuation(Backend& backend, const EvalModel& eval,
                                        const std::vector<int32_t>& prompt, int64_t max_new_tokens) {
  GenerateOptions gen;
  gen.max_new_tokens = max_new_tokens;
  gen.stop_tokens = eval.model.stop_tokens;
  std::vector<int32_t> ids;
  SACC_ASSIGN_OR_RETURN(
      GenerationMetrics metrics, generate(backend, prompt, gen, [&](int32_t id) {
        if (std::find(gen.stop_tokens.begin(), gen.stop_tokens.end(), id) == gen.stop_tokens.end())
          ids.push_back(id);
      }));
  (void)metrics;
  return eval.model.maybe_tokenizer->decode(ids);
}

std::vector<std::string> split_settings(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ';')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

void plot_or_warn(const std::string& script, const std::string& png_path) {
  const std::string script_path = png_path + ".gp";
  std::ofstream file(script_path);
  if (!file || !(file << script) || !file.flush()) {
    std::fprintf(stderr, "warning: cannot write %s; %s not drawn\n", script_path.c_str(), png_path.c_str());
    return;
  }
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "warning: gnuplot is not installed (apt-get install gnuplot-nox); %s not drawn\n",
                 png_path.c_str());
    return;
  }
  std::string quoted = "'";  // for sh: a quote inside '...' is '\''
  for (char c : script_path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  const int status = std::system(("gnuplot " + quoted + "'").c_str());
  if (status != 0) {
    std::fprintf(stderr, "warning: gnuplot failed on %s (exit status %d); %s not drawn\n",
                 script_path.c_str(), WIFEXITED(status) ? WEXITSTATUS(status) : -1, png_path.c_str());
  }
}

}  // namespace sacc::cli
