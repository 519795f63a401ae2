// Chat templates: a model's Jinja source (first line of the input: two flag bytes, then the source) picks the
// template, and the rest of the input, split at NUL bytes into role/content pairs, is rendered with it.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "model/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool llama3_headers = (data[0] & 1) != 0;
  const bool chatml_markers = (data[0] & 2) != 0;
  const bool add_generation_prompt = (data[1] & 1) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t newline = rest.find('\n');
  const std::string_view source = rest.substr(0, newline);
  rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
  const sacc::ChatTemplate chat_template = sacc::detect_chat_template(source, llama3_headers, chatml_markers);
  (void)sacc::chat_template_kind_name(chat_template.kind);

  std::vector<std::string_view> fields;
  while (!rest.empty()) {
    const size_t nul = rest.find('\0');
    fields.push_back(rest.substr(0, nul));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  std::vector<sacc::ChatMessage> messages;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    messages.push_back({std::string(fields[i]), std::string(fields[i + 1])});
  }
  (void)sacc::render_chat(chat_template, messages, add_generation_prompt);
  return 0;
}
