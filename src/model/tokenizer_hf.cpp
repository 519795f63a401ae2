// Tokenizer::from_hf_json: a Hugging Face tokenizer.json (BPE model, byte-level) plus tokenizer_config.json.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json_guard.h"
#include "core/log.h"
#include "model/tokenizer.h"
#include "model/tokenizer_model.h"

namespace sacc {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

Result<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(StatusCode::NOT_FOUND, "{}: cannot open", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Result<Json> parse_json(std::string_view text, const std::string& origin) {
  Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded()) return make_error(StatusCode::CORRUPT_DATA, "{}: not valid JSON", origin);
  return json;
}

// A token given in tokenizer_config.json either as a string or as {"content": ...}.
std::string token_content(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return {};
}

Status add_pre_tokenizer(const Json& spec, TokenizerModel& model, const std::string& source) {
  if (spec.is_null()) return Status::ok();
  const std::string type = spec.value("type", "");
  if (type == "Sequence") {
    for (const Json& child : spec.value("pretokenizers", Json::array())) {
      SACC_RETURN_IF_ERROR(add_pre_tokenizer(child, model, source));
    }
    return Status::ok();
  }
  if (type == "Split") {
    const Json& pattern = spec.value("pattern", Json::object());
    const std::string behavior = spec.value("behavior", "");
    if (behavior != "Isolated" || spec.value("invert", false)) {
      return make_error(StatusCode::UNSUPPORTED,
                        "{}: Split pre-tokenizer with behavior '{}' is not supported", source, behavior);
    }
    if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
      return model.pre_tokenizer.add_stage(pattern["Regex"].get<std::string>());
    }
    return make_error(StatusCode::UNSUPPORTED, "{}: Split pre-tokenizer without a Regex pattern", source);
  }
  if (type == "ByteLevel") {
    model.add_prefix_space = spec.value("add_prefix_space", false);
    if (spec.value("use_regex", true)) return model.pre_tokenizer.add_stage(kGpt2SplitRegex);
    return Status::ok();
  }
  if (type == "Digits") {
    return model.pre_tokenizer.add_stage(spec.value("individual_digits", false) ? kIndividualDigitsRegex
                                                                                : kDigitRunsRegex);
  }
  return make_error(StatusCode::UNSUPPORTED, "{}: pre-tokenizer '{}' is not supported (byte-level BPE only)",
                    source, type);
}

// Names the common pre-tokenizers so `sacc info` can show which family was recognised.
std::string name_pre_tokenizer(const Json& spec) {
  const std::string text = spec.dump();
  if (text.find("\\\\p{N}{1,3}") != std::string::npos) return "llama3";
  if (text.find("Digits") != std::string::npos) return "smollm";
  if (text.find("[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|") != std::string::npos) return "qwen2";
  if (text.find("\"Split\"") == std::string::npos) return "gpt2";
  return "custom";
}

// BOS from the post-processor: TemplateProcessing's "single" template starting with a special token.
std::string post_processor_bos(const Json& spec) {
  if (!spec.is_object()) return {};
  if (spec.value("type", "") == "Sequence") {
    for (const Json& child : spec.value("processors", Json::array())) {
      std::string bos = post_processor_bos(child);
      if (!bos.empty()) return bos;
    }
    return {};
  }
  if (spec.value("type", "") != "TemplateProcessing") return {};
  const Json& single = spec.value("single", Json::array());
  if (!single.is_array() || single.empty() || !single[0].contains("SpecialToken")) return {};
  return single[0]["SpecialToken"].value("id", "");
}

Status load_vocab(const Json& model_spec, const Json& added, TokenizerModel& model,
                  const std::string& source) {
  const Json& vocab = model_spec.value("vocab", Json::object());
  if (!vocab.is_object() || vocab.empty()) {
    return make_error(StatusCode::CORRUPT_DATA, "{}: model.vocab is missing or empty", source);
  }
  int64_t size = 0;
  for (const auto& [spelling, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 24)) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: vocab entry '{}' has an invalid id", source, spelling);
    }
    size = std::max(size, id.get<int64_t>() + 1);
  }
  for (const Json& token : added) {
    // Integers only: value("id", int64_t) would cast a float such as 1e30 out of range (undefined behaviour,
    // found by fuzz_tokenizer_json) and silently truncate 1.5.
    const auto id_field = token.find("id");
    const int64_t id =
        id_field != token.end() && id_field->is_number_integer() ? id_field->get<int64_t>() : -1;
    if (id < 0 || id >= (int64_t{1} << 24) || !token.contains("content") || !token["content"].is_string()) {
      return make_error(StatusCode::CORRUPT_DATA, "{}: added_tokens entry {} is malformed", source,
                        token.dump());
    }
    size = std::max(size, id + 1);
  }
  model.token_bytes.assign(static_cast<size_t>(size), std::string());
  std::string raw;
  for (const auto& [spelling, id] : vocab.items()) {
    model.token_bytes[id.get<size_t>()] = byte_level_decode(spelling, &raw) ? raw : spelling;
  }
  for (const Json& token : added)
    model.token_bytes[token["id"].get<size_t>()] = token["content"].get<std::string>();
  model.index_vocab();
  for (const Json& token : added) {
    const auto id = token["id"].get<int32_t>();
    model.special[id] = token.value("special", false) ? 1 : 0;
    model.add_split_token(model.token_bytes[id], id);
  }
  return Status::ok();
}

}  // namespace

Result<Tokenizer> Tokenizer::from_hf_json(const std::string& path) {
  fs::path file = path;
  std::error_code ec;
  if (fs::is_directory(file, ec)) file /= "tokenizer.json";
  SACC_ASSIGN_OR_RETURN(const std::string json_text, read_text(file));
  std::string config_text;
  if (const fs::path config_path = file.parent_path() / "tokenizer_config.json";
      fs::exists(config_path, ec)) {
    SACC_ASSIGN_OR_RETURN(config_text, read_text(config_path));
  }
  return from_hf_json_text(json_text, config_text, file.string());
}

Result<Tokenizer> Tokenizer::from_hf_json_text(std::string_view json_text, std::string_view config_text,
                                               const std::string& source) {
  return guard_json(source, [&]() -> Result<Tokenizer> {
    SACC_ASSIGN_OR_RETURN(Json json, parse_json(json_text, source));
    Json config = Json::object();
    if (!config_text.empty()) {
      SACC_ASSIGN_OR_RETURN(config, parse_json(config_text, source + ": tokenizer_config.json beside it"));
    }
    const Json& model_spec = json.value("model", Json::object());
    if (model_spec.value("type", "") != "BPE") {
      return make_error(StatusCode::UNSUPPORTED, "{}: model type '{}' is not supported (byte-level BPE only)",
                        source, model_spec.value("type", "?"));
    }
    if (model_spec.value("byte_fallback", false)) {
      return make_error(StatusCode::UNSUPPORTED,
                        "{}: SentencePiece-style BPE (byte_fallback) is not supported (byte-level BPE only)",
                        source);
    }
    auto model = std::make_shared<TokenizerModel>();
    const Json added = json.value("added_tokens", Json::array());
    SACC_RETURN_IF_ERROR(load_vocab(model_spec, added, *model, source));

    const Json& merges = model_spec.value("merges", Json::array());
    model->merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const Json& merge = merges[i];
      std::string left, right;
      if (merge.is_string()) {
        const std::string text = merge.get<std::string>();
        const size_t space = text.find(' ', 1);
        if (space == std::string::npos) {
          return make_error(StatusCode::CORRUPT_DATA, "{}: merges[{}] '{}' is not a pair", source, i, text);
        }
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        return make_error(StatusCode::CORRUPT_DATA, "{}: merges[{}] is not a pair", source, i);
      }
      SACC_RETURN_IF_ERROR(model->add_merge(left, right, static_cast<int32_t>(i), source));
    }
    model->ignore_merges = model_spec.value("ignore_merges", false);

    const Json& normalizer = json.value("normalizer", Json());
    if (!normalizer.is_null()) {
      if (normalizer.value("type", "") != "NFC") {
        return make_error(StatusCode::UNSUPPORTED, "{}: normalizer '{}' is not supported", source,
                          normalizer.value("type", "?"));
      }
      // Qwen2 declares NFC; text already in NFC (nearly all text) tokenizes identically without it.
      SACC_LOG_DEBUG("{}: NFC normalisation is not applied (input assumed to be NFC)", source);
    }
    const Json& pre = json.value("pre_tokenizer", Json());
    SACC_RETURN_IF_ERROR(add_pre_tokenizer(pre, *model, source));
    model->pre_tokenizer_name = name_pre_tokenizer(pre);

    std::string bos_text = post_processor_bos(json.value("post_processor", Json()));
    model->adds_bos = !bos_text.empty();
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      model->adds_bos = config["add_bos_token"].get<bool>();
    }
    if (bos_text.empty() && config.contains("bos_token")) bos_text = token_content(config["bos_token"]);
    model->bos = bos_text.empty() ? -1 : model->find(bos_text);
    if (config.contains("eos_token")) model->eos = model->find(token_content(config["eos_token"]));

    std::string jinja;
    if (config.contains("chat_template")) {
      const Json& chat = config["chat_template"];
      if (chat.is_string()) {
        jinja = chat.get<std::string>();
      } else if (chat.is_array()) {
        for (const Json& named : chat) {
          if (named.value("name", "") == "default") jinja = named.value("template", "");
        }
      }
    }
    model->finalize(jinja);
    return Tokenizer(std::move(model));
  });
}

}  // namespace sacc
