// `sacc serve` request bodies -> parse_completion_request for both endpoints (the first byte picks one); what
// parses is answered as the server would (completion, streamed chunk, error JSON).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tools/sacc/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  using sacc::cli::Endpoint;
  const Endpoint endpoint = (data[0] & 1) != 0 ? Endpoint::CHAT_COMPLETIONS : Endpoint::COMPLETIONS;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const sacc::cli::ParsedRequest parsed = sacc::cli::parse_completion_request(body, endpoint);
  if (!parsed.request) {
    (void)sacc::cli::error_json(parsed.error);
    return 0;
  }
  const sacc::cli::ResponseIdentity identity{"cmpl-fuzz", 0, parsed.request->model};
  const sacc::cli::CompletionResult result{parsed.request->prompt, "stop", {1, 1}};
  (void)sacc::cli::completion_json(endpoint, identity, result);
  (void)sacc::cli::chunk_json(endpoint, identity, {parsed.request->model, true, "stop", std::nullopt});
  return 0;
}
