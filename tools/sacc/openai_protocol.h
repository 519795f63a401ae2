// The OpenAI-compatible wire format of `sacc serve`, as pure functions: request bodies of /v1/completions and
// /v1/chat/completions parsed and checked into a CompletionRequest (or an ApiError in OpenAI's error shape),
// and the JSON of responses, streamed chunks and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/chat_template.h"

namespace sacc::cli {

// {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field; empty: null
  std::string code;   // empty: null
};

std::string error_json(const ApiError& error);

enum class Endpoint { COMPLETIONS, CHAT_COMPLETIONS };

// Our one extension of the request body: "sparse_accelerate": {"attention": "dense"|"sparse"|"auto",
// "pattern": "..."}, the request's own attention settings over the server's flags. The shape is checked here
// (an object of those string fields and no others); the values are checked as the CLI's --attention and
// --pattern are (serve_attention.h).
struct AttentionOverride {
  std::optional<std::string> attention;  // absent: the server's --attention
  std::optional<std::string> pattern;    // absent: the server's --pattern / --pattern-config
};
inline constexpr const char* kAttentionOverrideField = "sparse_accelerate";

struct CompletionRequest {
  Endpoint endpoint = Endpoint::COMPLETIONS;
  std::string model;
  std::string prompt;                 // COMPLETIONS
  std::vector<ChatMessage> messages;  // CHAT_COMPLETIONS
  std::optional<int64_t> max_tokens;  // absent: the endpoint's default (see serve_server.cpp)
  float temperature = 1.0f;           // OpenAI's default
  float top_p = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // at most 4, none empty
  bool stream = false;
  std::optional<AttentionOverride> attention;  // absent: the server's attention flags
};

struct ParsedRequest {
  std::optional<CompletionRequest> request;  // set on success
  ApiError error;                            // meaningful when request is empty
};

// Parses a request body. Unknown fields are ignored (clients send many), except inside "sparse_accelerate",
// which is ours; a null field counts as absent; n must be 1; malformed JSON and wrong types give 400 naming
// the field.
ParsedRequest parse_completion_request(std::string_view body, Endpoint endpoint);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// What a finished generation reports: "stop" (a stop token or string) or "length" (max_tokens).
struct CompletionResult {
  std::string text;
  std::string finish_reason;
  Usage usage;
};

// Identity of one response: "cmpl-..." or "chatcmpl-...", the Unix time it was created, the model id.
struct ResponseIdentity {
  std::string id;
  int64_t created = 0;
  std::string model;
};

std::string completion_json(Endpoint endpoint, const ResponseIdentity& identity,
                            const CompletionResult& result);

// One server-sent event's JSON: a text delta, and on the last chunk the finish reason (and usage). Chat
// chunks carry the assistant role on the first.
struct StreamDelta {
  std::string text;
  bool first = false;
  std::optional<std::string> finish_reason;
  std::optional<Usage> usage;
};
std::string chunk_json(Endpoint endpoint, const ResponseIdentity& identity, const StreamDelta& delta);

// "data: <json>\n\n"
std::string sse_event(std::string_view json);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

std::string models_json(const std::string& model_id, int64_t created);

}  // namespace sacc::cli
