#include "tools/sacc/openai_protocol.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sacc::cli {
namespace {

using nlohmann::json;

constexpr size_t kMaxStopStrings = 4;  // OpenAI's limit

ApiError bad_field(const std::string& param, const std::string& message) {
  ApiError e;
  e.message = message;
  e.param = param;
  return e;
}

// The field, or null when absent or null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

// Chat content: a string, or an array of {"type": "text", "text": ...} parts joined.
std::optional<std::string> message_content(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::nullopt;
  std::string text;
  for (const json& part : content) {
    if (!part.is_object()) return std::nullopt;
    const json* type = field(part, "type");
    const json* part_text = field(part, "text");
    if (!type || !type->is_string() || *type != "text" || !part_text || !part_text->is_string())
      return std::nullopt;
    text += part_text->get<std::string>();
  }
  return text;
}

std::optional<ApiError> parse_messages(const json& messages, std::vector<ChatMessage>& out) {
  if (!messages.is_array() || messages.empty())
    return bad_field("messages", "'messages' must be a non-empty array of {role, content} objects");
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad_field(where, where + " must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) return bad_field(where + ".role", where + ".role must be a string");
    const json* content = field(m, "content");
    std::optional<std::string> text = content ? message_content(*content) : std::optional<std::string>("");
    if (!text)
      return bad_field(where + ".content", where + ".content must be a string or an array of text parts");
    out.push_back({role->get<std::string>(), *text});
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& prompt, std::string& out) {
  if (prompt.is_string()) {
    out = prompt.get<std::string>();
    return std::nullopt;
  }
  if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    out = prompt[0].get<std::string>();
    return std::nullopt;
  }
  return bad_field("prompt", "'prompt' must be a string (or an array of one string)");
}

std::optional<ApiError> parse_stop(const json& stop, std::vector<std::string>& out) {
  if (stop.is_string()) {
    out.push_back(stop.get<std::string>());
  } else if (stop.is_array()) {
    for (const json& s : stop) {
      if (!s.is_string()) return bad_field("stop", "'stop' must be a string or an array of strings");
      out.push_back(s.get<std::string>());
    }
  } else {
    return bad_field("stop", "'stop' must be a string or an array of strings");
  }
  if (out.size() > kMaxStopStrings)
    return bad_field("stop", fmt::format("'stop' holds at most {} strings", kMaxStopStrings));
  for (const std::string& s : out)
    if (s.empty()) return bad_field("stop", "'stop' strings must not be empty");
  return std::nullopt;
}

std::optional<ApiError> parse_attention_override(const json& value, AttentionOverride& out) {
  const std::string name = kAttentionOverrideField;
  if (!value.is_object())
    return bad_field(name, fmt::format("'{}' must be an object with 'attention' and/or 'pattern'", name));
  for (const auto& [key, v] : value.items()) {
    const std::string where = fmt::format("{}.{}", name, key);
    std::optional<std::string>* slot = key == "attention" ? &out.attention
                                       : key == "pattern" ? &out.pattern
                                                          : nullptr;
    if (!slot)
      return bad_field(where,
                       fmt::format("unknown field '{}': '{}' takes 'attention' and 'pattern'", where, name));
    if (v.is_null()) continue;
    if (!v.is_string()) return bad_field(where, fmt::format("'{}' must be a string", where));
    *slot = v.get<std::string>();
  }
  return std::nullopt;
}

// The request's fields into `r`; the first problem found.
std::optional<ApiError> parse_fields(const json& body, CompletionRequest& r) {
  const json* model = field(body, "model");
  if (!model) return bad_field("model", "'model' is required");
  if (!model->is_string()) return bad_field("model", "'model' must be a string");
  r.model = model->get<std::string>();

  if (r.endpoint == Endpoint::CHAT_COMPLETIONS) {
    const json* messages = field(body, "messages");
    if (!messages) return bad_field("messages", "'messages' is required");
    if (auto e = parse_messages(*messages, r.messages)) return e;
  } else {
    const json* prompt = field(body, "prompt");
    if (!prompt) return bad_field("prompt", "'prompt' is required");
    if (auto e = parse_prompt(*prompt, r.prompt)) return e;
  }

  // Chat clients may send the newer name.
  const char* max_name = "max_tokens";
  const json* max_tokens = field(body, max_name);
  if (!max_tokens && r.endpoint == Endpoint::CHAT_COMPLETIONS) {
    max_name = "max_completion_tokens";
    max_tokens = field(body, max_name);
  }
  if (max_tokens) {
    if (!max_tokens->is_number_integer())
      return bad_field(max_name, fmt::format("'{}' must be an integer", max_name));
    if (max_tokens->get<int64_t>() < 1)
      return bad_field(max_name, fmt::format("'{}' must be >= 1", max_name));
    r.max_tokens = max_tokens->get<int64_t>();
  }
  if (const json* t = field(body, "temperature")) {
    if (!t->is_number()) return bad_field("temperature", "'temperature' must be a number");
    const double v = t->get<double>();
    if (v < 0.0 || v > 2.0) return bad_field("temperature", "'temperature' must be in [0, 2]");
    r.temperature = static_cast<float>(v);
  }
  if (const json* p = field(body, "top_p")) {
    if (!p->is_number()) return bad_field("top_p", "'top_p' must be a number");
    const double v = p->get<double>();
    if (v <= 0.0 || v > 1.0) return bad_field("top_p", "'top_p' must be in (0, 1]");
    r.top_p = static_cast<float>(v);
  }
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer()) return bad_field("seed", "'seed' must be an integer");
    r.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
  }
  if (const json* stop = field(body, "stop")) {
    if (auto e = parse_stop(*stop, r.stop)) return e;
  }
  if (const json* stream = field(body, "stream")) {
    if (!stream->is_boolean()) return bad_field("stream", "'stream' must be a boolean");
    r.stream = stream->get<bool>();
  }
  if (const json* n = field(body, "n")) {
    if (!n->is_number_integer()) return bad_field("n", "'n' must be an integer");
    if (n->get<int64_t>() != 1) return bad_field("n", "only n = 1 is supported");
  }
  if (const json* a = field(body, kAttentionOverrideField)) {
    if (auto e = parse_attention_override(*a, r.attention.emplace())) return e;
  }
  return std::nullopt;
}

json usage_object(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json nullable(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

}  // namespace

std::string error_json(const ApiError& e) {
  return json{
      {"error",
       {{"message", e.message}, {"type", e.type}, {"param", nullable(e.param)}, {"code", nullable(e.code)}}}}

      .dump(-1, ' ', false, json::error_handler_t::replace);
}

ParsedRequest parse_completion_request(std::string_view body, Endpoint endpoint) {
  ParsedRequest out;
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    out.error = bad_field("", "the request body is not valid JSON");
    return out;
  }
  if (!parsed.is_object()) {
    out.error = bad_field("", "the request body must be a JSON object");
    return out;
  }
  CompletionRequest request;
  request.endpoint = endpoint;
  if (std::optional<ApiError> e = parse_fields(parsed, request)) {
    out.error = *e;
    return out;
  }
  out.request = std::move(request);
  return out;
}

std::string completion_json(Endpoint endpoint, const ResponseIdentity& identity,
                            const CompletionResult& result) {
  json choice = {{"index", 0}, {"finish_reason", result.finish_reason}, {"logprobs", nullptr}};
  if (endpoint == Endpoint::CHAT_COMPLETIONS) {
    choice["message"] = {{"role", "assistant"}, {"content", result.text}};
  } else {
    choice["text"] = result.text;
  }
  return json{{"id", identity.id},
              {"object", endpoint == Endpoint::CHAT_COMPLETIONS ? "chat.completion" : "text_completion"},
              {"created", identity.created},
              {"model", identity.model},
              {"choices", json::array({choice})},
              {"usage", usage_object(result.usage)}}

      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string chunk_json(Endpoint endpoint, const ResponseIdentity& identity, const StreamDelta& delta) {
  json choice = {{"index", 0},
                 {"finish_reason", delta.finish_reason ? json(*delta.finish_reason) : json(nullptr)},
                 {"logprobs", nullptr}};
  if (endpoint == Endpoint::CHAT_COMPLETIONS) {
    json d = json::object();
    if (delta.first) d["role"] = "assistant";
    if (!delta.text.empty() || !delta.finish_reason) d["content"] = delta.text;
    choice["delta"] = d;
  } else {
    choice["text"] = delta.text;
  }
  json out = {
      {"id", identity.id},
      {"object", endpoint == Endpoint::CHAT_COMPLETIONS ? "chat.completion.chunk" : "text_completion"},
      {"created", identity.created},
      {"model", identity.model},
      {"choices", json::array({choice})}};
  if (delta.usage) out["usage"] = usage_object(*delta.usage);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(std::string_view json_text) {
  return fmt::format("data: {}\n\n", json_text);
}

std::string models_json(const std::string& model_id, int64_t created) {
  return json{
      {"object", "list"},
      {"data",
       json::array({{{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "sacc"}}})}}

      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace sacc::cli
